"""The in-process engine: reader threads read, hash and decode images ahead while the model captions
the batch before, so the model rarely waits for the disk or the JPEG decoder.

``caption_collection`` yields one :class:`Produced` per batch: the rows it made (captions and unreadable
files) and how many images it skipped because their results already exist.
"""

from __future__ import annotations

import hashlib
import io
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from captioner.collections.results import ResultRow, recorded_decoding
from captioner.data.images import DEFAULT_MAX_PIXELS, load_image
from captioner.errors import ImageError

UPRIGHT_SWAPS = (5, 6, 7, 8)  # EXIF orientations that turn the picture a quarter


@dataclass(frozen=True)
class CollectionSettings:
    """How a collection run reads and batches images."""

    batch_size: int = 16  # images per model call
    readers: int = 2  # threads reading, hashing and decoding images ahead of the model
    prefetch_batches: int = 2  # batches decoded ahead of the one the model is working on
    max_side: int = 512  # images are shrunk to at most this many pixels a side (the models look at far fewer)
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are refused, as for single uploads

    def __post_init__(self) -> None:
        for name in ("batch_size", "readers", "prefetch_batches", "max_side", "max_pixels"):
            if getattr(self, name) < (0 if name == "prefetch_batches" else 1):
                raise ValueError(f"{name.replace('_', ' ')} must be at least {0 if name == 'prefetch_batches' else 1}")


@dataclass
class PreparedImage:
    """One file after reading: its identity, and the decoded picture or why there is none."""

    path: str
    sha256: str | None = None  # None when the file could not be read at all
    width: int | None = None  # upright size of the original
    height: int | None = None
    image: object = None  # the RGB PIL image, shrunk to max_side; None when skipped or unreadable
    error: str | None = None

    def error_row(self, model: str, decoding: dict) -> ResultRow:
        return ResultRow(self.path, self.sha256, self.width, self.height, model, decoding, error=self.error)


@dataclass
class Produced:
    """What one step of a run made."""

    rows: list[ResultRow] = field(default_factory=list)
    skipped: int = 0  # images whose results already existed (or copies of an image already captioned)


def prepare_image(path: str | Path, is_done: Callable[[str], bool], settings: CollectionSettings) -> PreparedImage:
    """Read, hash and (unless its result exists) decode one file through the safe loader."""
    label = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return PreparedImage(label, error=f"{label} cannot be read ({error.strerror or error})")
    digest = hashlib.sha256(data).hexdigest()
    if is_done(digest):
        return PreparedImage(label, digest)
    try:
        image, (width, height) = decode_photo(data, label, max_pixels=settings.max_pixels, max_side=settings.max_side)
    except ImageError as error:
        return PreparedImage(label, digest, error=str(error))
    return PreparedImage(label, digest, width, height, image)


def decode_photo(data: bytes, name: str, *, max_pixels: int, max_side: int | None):
    """An image file's (or a RAW photo's embedded preview's) upright RGB picture and the photo's upright
    (width, height); ImageError when it cannot be read safely."""
    from captioner.collections.raw import HEAD_BYTES, load_raw_preview, raw_format

    if raw_format(data[:HEAD_BYTES], Path(name).suffix) is not None:
        return load_raw_preview(data, name=name, max_pixels=max_pixels, max_side=max_side)
    image = load_image(data, max_pixels=max_pixels, max_side=max_side, name=name)
    return image, upright_size(data)


def upright_size(data: bytes) -> tuple[int, int]:
    """The size of an image file as it stands upright (after its EXIF orientation), from its header."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as header:
        width, height = header.size
        if header.format != "HEIF" and header.getexif().get(0x0112, 1) in UPRIGHT_SWAPS:
            return height, width  # pillow-heif turns HEIC pictures itself; others still need it
        return width, height


def prepared_images(paths: Iterable[str | Path], is_done: Callable[[str], bool],
                    settings: CollectionSettings) -> Iterator[PreparedImage]:
    """``prepare_image`` for every path, in order, with up to (prefetch_batches + 1) batches in flight."""
    window = settings.batch_size * (settings.prefetch_batches + 1)
    pool = ThreadPoolExecutor(settings.readers, thread_name_prefix="collection-reader")
    pending: deque = deque()
    try:
        for path in paths:
            pending.append(pool.submit(prepare_image, path, is_done, settings))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def caption_collection(paths: Iterable[str | Path], captioner, decoding, done: set,
                       settings: CollectionSettings = CollectionSettings(), extra=(), score: str | None = None
                       ) -> Iterator[Produced]:
    """Caption every image in ``paths`` whose key is not in ``done`` (a set of result keys that the
    caller keeps current); one :class:`Produced` per batch, in the order the files came. ``extra`` are
    further decodings (other caption styles) each image is also captioned with, a row each; an image is
    done when every decoding's row exists. ``score="clip"`` also gives each caption its CLIPScore."""
    from captioner.collections.results import result_key

    model = captioner.name
    decodings = (decoding, *extra)
    decoding_dicts = [recorded_decoding(captioner, each) for each in decodings]
    claimed: set[str] = set()  # contents met in this run: a second copy is not captioned again

    def is_done(digest: str) -> bool:
        return all(result_key(digest, model, each) in done for each in decoding_dicts)

    waiting: list[PreparedImage] = []
    step = Produced()
    for item in prepared_images(paths, is_done, settings):
        identity = item.sha256 or f"path:{item.path}"  # unreadable files are known by their path
        if identity in claimed or is_done(identity):
            step.skipped += 1
        elif item.error is not None:
            step.rows.append(item.error_row(model, decoding_dicts[0]))
        else:
            waiting.append(item)
        claimed.add(identity)
        if len(waiting) >= settings.batch_size or len(step.rows) >= settings.batch_size:
            step.rows.extend(row for each in decodings for row in caption_batch(captioner, each, waiting, score))
            yield step
            waiting, step = [], Produced()
    step.rows.extend(row for each in decodings for row in caption_batch(captioner, each, waiting, score))
    if step.rows or step.skipped:
        yield step


def caption_batch(captioner, decoding, items: list[PreparedImage], score: str | None = None) -> list[ResultRow]:
    """One model call for the decoded images (and one CLIP call when ``score`` asks for it); a row each."""
    from captioner.evaluation.clipscore import score_captions

    if not items:
        return []
    images = [item.image for item in items]
    captions = captioner.caption(images, decoding)
    ratings = score_captions(score, images, [caption.text for caption in captions])
    decoding_dict = recorded_decoding(captioner, decoding)
    return [ResultRow(item.path, item.sha256, item.width, item.height, captioner.name, decoding_dict,
                      caption=caption.text, score=caption.score,
                      alternatives=[{"text": a.text, "log_prob": float(a.log_prob)} for a in caption.alternatives],
                      keywords=list(caption.keywords), clip_score=rating)
            for item, caption, rating in zip(items, captions, ratings)]
