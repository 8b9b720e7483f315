"""The Keras applications that serve as backbones, where their ImageNet weights come from, and whether those
weights can be had: from Keras's cache, from their server (probed briefly, so an offline machine gets a clear
error at once rather than a long download timeout), or from a local weights file."""

from __future__ import annotations

import os
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from captioner import environment
from captioner.errors import ModelError, OfflineError

WEIGHT_SUFFIXES = (".weights.h5", ".keras", ".h5")  # a local weights file: Keras 3 weights, a whole model, legacy h5
OFFLINE_VARIABLE = environment.VARIABLES["offline"]  # named in the message when offline mode is on
PROBE_TIMEOUT_S = 3.0  # how long to wait for the weights server before calling the machine offline


@dataclass(frozen=True)
class KerasApplication:
    """One ``keras.applications`` model used as an image encoder."""

    constructor: str  # attribute of keras.applications that builds the model
    module: str  # keras.applications submodule whose preprocess_input the model expects
    image_size: int  # the side in pixels the ImageNet weights were trained at
    dim: int  # length of the pooled embedding
    weights_url: str  # where Keras downloads the ImageNet weights without the classifier

    @property
    def weights_file(self) -> str:
        return self.weights_url.rsplit("/", 1)[-1]


_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"
KERAS_BACKBONES: dict[str, KerasApplication] = {
    "densenet201": KerasApplication("DenseNet201", "densenet", 224, 1920,
                                    _GCS + "densenet/densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet50": KerasApplication("ResNet50", "resnet", 224, 2048,
                                 _GCS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "inceptionv3": KerasApplication("InceptionV3", "inception_v3", 299, 2048,
                                    _GCS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "efficientnetb0": KerasApplication("EfficientNetB0", "efficientnet", 224, 1280,
                                       "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5"),
    "vgg16": KerasApplication("VGG16", "vgg16", 224, 512,
                              _GCS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
}


def load_weights_file(model, path: Path, name: str) -> None:
    """Load a weights file into ``model``, refusing a partial load (Keras only warns when layers do not match)."""
    import warnings

    problem = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(str(path))
        except Exception as error:  # h5py, Keras and shape errors all mean the same to the user
            problem = str(error)
    skipped = [str(w.message) for w in caught if "freshly-initialized" in str(w.message) or "Skipping" in str(w.message)]
    if problem or skipped:
        raise ModelError(f"cannot load {path} into {name}: {problem or skipped[0]}. The file must hold weights of "
                         "the same backbone, without the classifier top, at a compatible input size")


def keras_cache_file(name: str) -> Path:
    """Where Keras keeps the downloaded ImageNet weights of a backbone (``$KERAS_HOME/models/``)."""
    home = environment.current().keras_home
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(home) / "models" / KERAS_BACKBONES[name].weights_file


def check_imagenet_available(name: str) -> None:
    """Return when the ImageNet weights are cached or their server answers; else raise OfflineError at once."""
    cached = keras_cache_file(name)
    if cached.is_file():
        return
    url = KERAS_BACKBONES[name].weights_url
    reason = f"offline mode is on ({OFFLINE_VARIABLE}=1)" if environment.current().offline else _unreachable(url)
    if reason:
        raise OfflineError(
            f"the ImageNet weights of {name} are not in the Keras cache ({cached}) and cannot be downloaded: {reason}. "
            f"Use --weights none (random weights), or fetch {url} on a connected machine and pass it with "
            f"--weights PATH (or copy it to {cached})")


def _unreachable(url: str) -> str:
    """Why ``url``'s server (or the HTTPS proxy) cannot be reached within PROBE_TIMEOUT_S, or '' if it can."""
    target = urllib.parse.urlsplit(urllib.request.getproxies().get("https") or url)
    host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return ""
    except OSError as error:
        return f"{host}:{port} cannot be reached ({error.strerror or error})"
