"""Comparing captioners on a person's own photos, where no reference captions exist.

``compare_models`` captions the same sample of photos with each model (one photo at a time, so the latency
is what one photo costs) and rates every caption with CLIPScore. Per model it reports the mean CLIPScore
and its spread (the standard deviation over the photos), the median latency, the share of distinct
captions (a model that says the same thing about every photo is of little use however well it scores)
and the refusals: photos a model gave no caption for. A model that cannot write the asked style refuses
every photo. :mod:`captioner.collections.compare_report` writes the result as a report folder.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from captioner.errors import CaptionerError, ImageError

DEFAULT_SAMPLE = 24  # photos compared when --sample is not given
MAX_SIDE = 768  # photos are shrunk to at most this many pixels a side before captioning (models look at fewer)


@dataclass
class Photo:
    """One photo of the sample, decoded once and shown to every model."""

    path: str  # as found in the folder
    image: object  # the RGB PIL image, shrunk to MAX_SIDE
    name: str = ""  # the path inside the folder, as the report shows it


@dataclass
class ModelRun:
    """What one model made of the sample."""

    name: str  # the model as the user named it
    captions: list[str | None] = field(default_factory=list)  # one per photo; None where it refused
    scores: list[float | None] = field(default_factory=list)  # CLIPScore of each caption; None where it refused
    latencies_ms: list[float] = field(default_factory=list)  # milliseconds each captioned photo took
    refused: str = ""  # why it refused every photo (a style it cannot write), "" otherwise

    @property
    def refusals(self) -> int:
        return sum(1 for caption in self.captions if caption is None)

    def summary(self) -> dict:
        """The table row: mean CLIPScore and its spread, latency, share of distinct captions, refusals."""
        scores = [score for score in self.scores if score is not None]
        written = [caption for caption in self.captions if caption is not None]
        distinct = len({" ".join(caption.lower().split()) for caption in written})
        return {
            "model": self.name,
            "photos": len(self.captions),
            "mean_clip_score": statistics.fmean(scores) if scores else None,
            "clip_score_spread": statistics.pstdev(scores) if len(scores) > 1 else (0.0 if scores else None),
            "median_latency_ms": statistics.median(self.latencies_ms) if self.latencies_ms else None,
            "distinct_share": distinct / len(written) if written else None,
            "refusals": self.refusals,
            "refused": self.refused,
        }


@dataclass
class Comparison:
    """Every model's run over one sample of photos."""

    folder: str  # what was sampled
    photos: list[Photo]
    runs: list[ModelRun]
    style: str  # the caption style asked of every model
    score_model: str  # the CLIP that scored the captions
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of sampled files not decoded
    found: int = 0  # images found in the folder

    def summaries(self) -> list[dict]:
        return [run.summary() for run in self.runs]


def sample_photos(folder: str | Path, count: int = DEFAULT_SAMPLE) -> tuple[list[Photo], list[tuple[str, str]], int]:
    """Up to ``count`` photos spread evenly over the folder's images (found by content, sorted by path, so the
    same folder always gives the same sample), decoded through the safe loader; unreadable ones are listed
    and replaced by the next readable image. Returns (photos, unreadable, images found)."""
    from captioner.collections.walk import find_images
    from captioner.data.images import load_image

    if count < 1:
        raise ValueError(f"the sample must hold at least 1 photo, not {count}")
    paths = list(find_images([folder]))
    if not paths:
        raise CaptionerError(f"no images in {folder}: give a folder of photos (JPEG, PNG, HEIC, ...)")
    step = max(len(paths) / count, 1.0)
    chosen = list(dict.fromkeys(int(number * step) for number in range(min(count, len(paths)))))
    order = chosen + sorted(set(range(len(paths))) - set(chosen))  # evenly spread first, then the others
    photos, unreadable = [], []
    for index in order:
        if len(photos) == count:
            break
        try:
            photos.append(Photo(str(paths[index]), load_image(paths[index], max_side=MAX_SIDE),
                                _inside(paths[index], folder)))
        except ImageError as error:
            unreadable.append((str(paths[index]), str(error)))
    if not photos:
        raise CaptionerError(f"none of the images in {folder} could be read; the first: {unreadable[0][1]}")
    photos.sort(key=lambda photo: photo.path)
    return photos, unreadable, len(paths)


def _inside(path: Path, folder: str | Path) -> str:
    try:
        return str(Path(path).relative_to(folder))
    except ValueError:  # a file given as the folder itself
        return Path(path).name


def run_model(captioner, photos: Sequence[Photo], request, on_photo: Callable[[], None] = lambda: None) -> ModelRun:
    """Caption each photo with ``captioner`` at its own decoding changed as ``request`` (a DecodingRequest)
    says; a style it cannot write, or options it refuses, make every photo a refusal."""
    from captioner.models.base import check_prompt
    from captioner.models.styles import check_style

    run = ModelRun(captioner.name)
    decoding = request.for_default(captioner.default_decoding)
    try:
        check_style(captioner, decoding.style)  # a style it cannot write: every photo refused
        check_prompt(captioner, decoding.prompt)
    except ValueError as refusal:
        run.refused = str(refusal)
        run.captions = [None] * len(photos)
        return run
    for photo in photos:
        started = time.perf_counter()
        try:
            text = captioner.caption([photo.image], decoding)[0].text.strip()
        except ValueError:  # the model declined this photo with these options
            text = ""
        run.latencies_ms.append((time.perf_counter() - started) * 1000)
        run.captions.append(text or None)
        on_photo()
    return run


def score_runs(runs: Sequence[ModelRun], photos: Sequence[Photo], scorer) -> None:
    """Fill each run's CLIPScores in one pass of the scorer over every caption."""
    pairs = [(run, index) for run in runs for index, caption in enumerate(run.captions) if caption is not None]
    scores = scorer.score([photos[index].image for _, index in pairs],
                          [run.captions[index] for run, index in pairs]) if pairs else []
    for run in runs:
        run.scores = [None] * len(run.captions)
    for (run, index), score in zip(pairs, scores):
        run.scores[index] = score


def compare_models(folder: str | Path, names: Sequence[str], load: Callable[[str], object], request, scorer,
                   sample: int = DEFAULT_SAMPLE, on_start: Callable[[int], None] = lambda total: None,
                   on_photo: Callable[[], None] = lambda: None) -> Comparison:
    """Caption a sample of ``folder`` with each model in ``names`` (loaded one at a time by ``load``, so only
    one is in memory) and score every caption with ``scorer``; ``on_start`` hears how many captions that
    makes, ``on_photo`` each one made."""
    photos, unreadable, found = sample_photos(folder, sample)
    on_start(len(photos) * len(names))
    runs = []
    for name in names:
        captioner = load(name)
        runs.append(run_model(captioner, photos, request, on_photo))
        del captioner
    score_runs(runs, photos, scorer)
    style = request.style or "caption"
    return Comparison(str(folder), photos, runs, style, scorer.name, unreadable, found)
