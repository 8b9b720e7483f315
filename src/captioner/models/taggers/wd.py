"""The WD taggers as published: ``model.onnx`` and ``selected_tags.csv`` in one folder, run by ONNX Runtime's
CPU provider through :mod:`captioner.models.onnx_sessions`.

Pre-processing follows the published reference (SmilingWolf's demo ``app.py`` and kohya's
``tag_images_by_wd14_tagger.py``): transparency flattened onto white, the image padded to a square on white
(centred), resized to the graph's input size with bicubic resampling, channels in BGR order, values 0-255 as
float32, no normalisation (the graph does its own). The input size and layout are read from the graph's input:
the published graphs are NHWC ``(batch, size, size, 3)``; a channels-first ``(batch, 3, size, size)`` graph is
fed transposed. The graph's first output holds one probability per tag, in the tag list's order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

from captioner.errors import ModelError
from captioner.models import onnx_sessions
from captioner.models.base import Caption, Decoding
from captioner.models.bundle import BundleInfo
from captioner.models.taggers.selection import TaggerSettings, Tags, select_tags
from captioner.models.taggers.tag_list import TAGS_FILE, TagList, read_tag_list

KIND = "tagger"
GRAPH_FILE = "model.onnx"
STYLES = ("keywords",)


@dataclass(frozen=True)
class GraphInput:
    """What the graph's input asks for."""

    name: str
    size: int  # the square side in pixels
    channels_last: bool  # NHWC (as published) or NCHW
    fixed_batch: int | None  # a graph made for a fixed batch (older exports: 1); None when any batch goes


def is_tagger_folder(path: str | Path) -> bool:
    """True for a folder holding a WD tagger's graph and tag list."""
    path = Path(path)
    return (path / GRAPH_FILE).is_file() and (path / TAGS_FILE).is_file()


def graph_input(session, graph: Path) -> GraphInput:
    """The input size, layout and batch of ``session``'s graph; a graph no tagger could be fed is a ModelError."""
    inputs = session.get_inputs()
    shape = list(inputs[0].shape) if inputs else []
    batch = shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None
    if len(shape) == 4 and shape[3] == 3 and isinstance(shape[1], int) and shape[1] == shape[2]:
        return GraphInput(inputs[0].name, shape[1], True, batch)
    if len(shape) == 4 and shape[1] == 3 and isinstance(shape[2], int) and shape[2] == shape[3]:
        return GraphInput(inputs[0].name, shape[2], False, batch)
    raise ModelError(f"{graph} takes an input of shape {shape}; a WD tagger takes one square RGB image batch, "
                     "(batch, size, size, 3) or (batch, 3, size, size)")


def prepare(image, size: int):
    """One image as the published taggers expect it: (size, size, 3) float32, BGR, 0-255, padded on white."""
    import numpy as np
    from PIL import Image

    if image.mode != "RGB":
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        canvas.alpha_composite(image.convert("RGBA"))
        image = canvas.convert("RGB")
    side = max(image.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    if side != size:
        square = square.resize((size, size), Image.BICUBIC)
    return np.asarray(square, dtype=np.float32)[:, :, ::-1]  # (size, size, 3), RGB -> BGR


class WDTagger:
    """A captioner whose text is the keywords style: the tags a WD tagger finds, with their probabilities.

    ``Caption.score`` is None (a tagger has no caption log-probability); ``keyword_scores`` holds each tag's
    probability and ``rating`` the image's rating, apart from the tags.
    """

    kind = KIND
    styles = STYLES
    prompt_option = None

    def __init__(self, folder: Path, info: BundleInfo, settings: TaggerSettings = TaggerSettings()):
        self.folder = Path(folder)
        self.name = info.name
        self.info = info
        self.settings = settings
        self.default_decoding = Decoding(style="keywords")
        self.tag_list: TagList = read_tag_list(self.folder / TAGS_FILE)
        self.graph = self.folder / GRAPH_FILE
        self.session = onnx_sessions.session(self.graph)
        self.input = graph_input(self.session, self.graph)
        outputs = self.session.get_outputs()
        width = outputs[0].shape[-1] if outputs and outputs[0].shape else None
        if isinstance(width, int) and width != len(self.tag_list):
            raise self._mismatch(width)

    def configured(self, settings: TaggerSettings) -> "WDTagger":
        """The same tagger (sharing its session) choosing its tags by ``settings``."""
        copy = object.__new__(WDTagger)
        copy.__dict__.update(self.__dict__, settings=settings)
        return copy

    def _mismatch(self, width) -> ModelError:
        return ModelError(f"{self.graph} gives {width} probabilities per image but {self.folder / TAGS_FILE} "
                          f"lists {len(self.tag_list)} tags; the graph and its tag list must come from the same "
                          "release")

    def probabilities(self, images: Sequence) -> "list":
        """One array of tag probabilities per image, ``settings.batch_size`` images per ONNX Runtime call."""
        import numpy as np

        step = self.input.fixed_batch or self.settings.batch_size
        found = []
        for start in range(0, len(images), step):
            batch = np.stack([prepare(image, self.input.size) for image in images[start:start + step]])
            if not self.input.channels_last:
                batch = batch.transpose(0, 3, 1, 2)  # (batch, 3, size, size)
            output = self.session.run(None, {self.input.name: np.ascontiguousarray(batch)})[0]  # (batch, tags)
            if output.ndim != 2 or output.shape[1] != len(self.tag_list):
                raise self._mismatch(output.shape[-1] if output.ndim else output.shape)
            found.extend(output)
        return found

    def run_settings(self) -> dict:
        """How this tagger chooses its tags, as a result row records it (a collection's resume key holds it)."""
        chosen = {name: list(value) if isinstance(value, tuple) else value
                  for name, value in asdict(self.settings).items() if name != "batch_size"}
        return {"tagger": chosen}

    def tags(self, images: Sequence) -> list[Tags]:
        return [select_tags(p, self.tag_list, self.settings) for p in self.probabilities(images)]

    def caption(self, images: Sequence, decoding: Decoding | None = None) -> list[Caption]:
        style = (decoding or self.default_decoding).style
        if style not in STYLES:
            raise ValueError(f"the tagger {self.name!r} writes keywords (tags) only, not {style!r} text")
        return [caption_of(found) for found in self.tags(images)]


def caption_of(tags: Tags) -> Caption:
    """The result contract's form of one image's tags."""
    return Caption(", ".join(tags.names), None, keywords=tags.names, keyword_scores=tags.scores, rating=tags.rating)


def load_folder(folder: str | Path, name: str | None = None, settings: TaggerSettings = TaggerSettings()) -> WDTagger:
    folder = Path(folder)
    if not (folder / GRAPH_FILE).is_file():
        raise ModelError(f"the tagger folder {folder} has no {GRAPH_FILE}; a WD tagger folder holds {GRAPH_FILE} "
                         f"and {TAGS_FILE}")
    info = BundleInfo(kind=KIND, name=name or folder.name, dataset="pretrained", backbone="onnx")
    return WDTagger(folder, info, settings)


def with_settings(captioner, **changes):
    """``captioner`` choosing tags by its settings with ``changes`` (TaggerSettings fields) when it is a tagger;
    ValueError for any other kind."""
    if not isinstance(captioner, WDTagger):
        raise ValueError(f"tagger options (thresholds, undesired and always-first tags, underscores) apply to "
                         f"taggers; {captioner.name} is a {captioner.kind} model")
    return captioner.configured(replace(captioner.settings, **changes))
