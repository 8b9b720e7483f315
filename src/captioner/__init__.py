"""captioner: image captioning with a CNN+LSTM trained on Flickr8k, ViT-GPT2, a web app and evaluation.

The public entry points are :func:`load_captioner` and :func:`available_captioners`; both are light to
import, the model code (TensorFlow, PyTorch, transformers) loads only when a model is loaded.
"""

__version__ = "0.1.0"

from captioner.models.base import Caption, Captioner, Decoding  # noqa: E402
from captioner.models.registry import available_captioners, load_captioner  # noqa: E402

__all__ = ["Caption", "Captioner", "Decoding", "available_captioners", "load_captioner", "__version__"]
