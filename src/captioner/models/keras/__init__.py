"""The Keras family: the Flickr8k CNN+LSTM captioner and the Show-Attend-Tell attention captioner.

Model code uses ``keras.ops`` and ``keras.layers`` only, so it runs on the TensorFlow and PyTorch backends.
"""
