"""Evaluating a captioner on a prepared split, or scoring captions some other system wrote (JSONL).

Both paths end in :func:`score_split`, so a model and a predictions file are scored by the same code,
always against the raw reference captions of the split (``PreparedItem.references``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from captioner.data.prepared import PreparedData, PreparedItem
from captioner.errors import DataError, ImageError, ModelError
from captioner.evaluation.diversity import diversity, diversity_warning
from captioner.evaluation.metrics import Scores, score_captions
from captioner.progress import progress_bar


@dataclass
class EvaluationResult:
    """How one model (or one predictions file) did on one split."""

    model: str  # bundle name, model id, or "predictions:FILE"
    kind: str  # "lstm", "vit-gpt2", ... or "predictions"
    dataset: str  # prepared data set name
    split: str  # "train", "val" or "test"
    items: list[PreparedItem]  # the scored images with their raw references, in split order
    captions: dict[str, str]  # image -> predicted caption
    scores: Scores  # corpus metrics, with notes and per-image scores
    diversity: dict  # see captioner.evaluation.diversity
    decoding: dict | None = None  # the Decoding used, None for a predictions file
    timing: dict = field(default_factory=dict)  # caption_s, images_per_s, score_s
    bundle_dir: Path | None = None  # set when the model is a bundle, so its captioner.json records the metrics
    notes: list[str] = field(default_factory=list)  # the scorer's notes plus coverage and diversity warnings

    def metrics_record(self) -> dict:
        """What ``metrics.json`` says about this model."""
        return {
            "model": self.model,
            "kind": self.kind,
            "bundle": str(self.bundle_dir) if self.bundle_dir else None,
            "dataset": self.dataset,
            "split": self.split,
            "decoding": self.decoding,
            "metrics": dict(self.scores),
            "tokenizer": self.scores.tokenizer,
            "diversity": self.diversity,
            "counts": {"images": len(self.items), "references": sum(len(i.references) for i in self.items)},
            "timing": self.timing,
            "notes": self.notes,
        }

    def bundle_metrics(self) -> dict:
        """What the bundle's ``captioner.json`` keeps for this split: numbers only, as front ends show them."""
        return {**dict(self.scores), "images": len(self.items),
                "distinct_share": round(self.diversity["distinct_share"], 4),
                "vocabulary": self.diversity["vocabulary"],
                "mean_length": round(self.diversity["mean_length"], 2)}


def score_split(model: str, kind: str, prepared: PreparedData, split: str, items: list[PreparedItem],
                captions: dict[str, str], *, java: bool | None = None) -> EvaluationResult:
    """Score ``captions`` (image -> caption) against the raw references of ``items``."""
    started = time.perf_counter()
    references = {item.image: list(item.references) for item in items}
    scores = score_captions(captions, references, java=java)
    figures = diversity(captions)
    notes = list(scores.notes)
    warning = diversity_warning(figures)
    if warning:
        notes.insert(0, warning[0].upper() + warning[1:] + ".")
    return EvaluationResult(model=model, kind=kind, dataset=prepared.name, split=split, items=items,
                            captions=captions, scores=scores, diversity=figures, notes=notes,
                            timing={"score_s": round(time.perf_counter() - started, 3)})


def split_items(prepared: PreparedData, split: str, limit: int | None = None) -> list[PreparedItem]:
    items = prepared.split(split)
    if not items:
        raise DataError(f"the {split} split of {prepared.folder} is empty; prepare the data set with a {split} split")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        items = items[:limit]
    return items


def evaluate_captioner(captioner, prepared: PreparedData, split: str = "test", decoding=None,
                       limit: int | None = None, batch_size: int = 16, progress: bool = True,
                       java: bool | None = None) -> EvaluationResult:
    """Caption every image of ``split`` (the first ``limit`` when given) in batches and score the captions."""
    from captioner.data.images import load_image

    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    items = split_items(prepared, split, limit)
    decoding = decoding or captioner.default_decoding
    captions: dict[str, str] = {}
    started = time.perf_counter()
    with progress_bar(total=len(items), desc=f"captioning {split}", unit="image", enabled=progress) as bar:
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            images = [_load(load_image, prepared, item) for item in batch]
            results = captioner.caption(images, decoding=decoding)
            if len(results) != len(batch):
                raise ModelError(f"{captioner.name} returned {len(results)} captions for {len(batch)} images")
            for item, result in zip(batch, results):
                captions[item.image] = result.text
            bar.update(len(batch))
    caption_s = time.perf_counter() - started
    result = score_split(captioner.name, captioner.kind, prepared, split, items, captions, java=java)
    result.decoding = decoding.to_dict()
    result.timing = {"caption_s": round(caption_s, 3), "images_per_s": round(len(items) / max(caption_s, 1e-9), 2),
                     **result.timing}
    return result


def _load(load_image, prepared: PreparedData, item: PreparedItem):
    path = prepared.image_path(item.image)
    try:
        return load_image(path)
    except (ImageError, OSError) as error:
        raise DataError(f"cannot read test image {item.image} ({error}); check {prepared.images_dir} "
                        "or run 'captioner data prepare' again") from None




# --- predictions written by another system -------------------------------------------------------

def read_predictions(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """Read a JSONL file of ``{"image": ..., "caption": ...}`` lines (an optional ``"model"`` field lets one
    file hold several models, as the ``predictions.jsonl`` of a report does). Returns model -> image -> caption;
    lines without a model go under the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"predictions file {path} does not exist")
    grouped: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: not valid JSON ({error.msg}); each line must be "
                                '{"image": "NAME.jpg", "caption": "..."}') from None
            if not isinstance(row, dict) or not isinstance(row.get("image"), str) or not isinstance(row.get("caption"), str):
                raise DataError(f'{where}: each line must be an object with text fields "image" and "caption"')
            model = str(row.get("model") or path.stem)
            captions = grouped.setdefault(model, {})
            if row["image"] in captions:
                raise DataError(f"{where}: image {row['image']} already has a caption" +
                                (f" from model {model}" if "model" in row else ""))
            captions[row["image"]] = row["caption"]
    if not grouped:
        raise DataError(f"predictions file {path} holds no captions")
    return grouped


def evaluate_predictions(captions: dict[str, str], prepared: PreparedData, split: str = "test",
                         name: str = "predictions", java: bool | None = None) -> EvaluationResult:
    """Score captions another system wrote for images of ``split``; every image must belong to the split."""
    items_by_image = {item.image: item for item in split_items(prepared, split)}
    unknown = [image for image in captions if image not in items_by_image]
    if unknown:
        shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise DataError(f"{len(unknown)} predicted images are not in the {split} split of {prepared.folder}: {shown}")
    items = [item for image, item in items_by_image.items() if image in captions]
    result = score_split(name, "predictions", prepared, split, items, captions, java=java)
    if len(items) < len(items_by_image):
        result.notes.append(f"The predictions cover {len(items)} of the {len(items_by_image)} images of the "
                            f"{split} split; only those were scored.")
    return result


def record_in_bundle(result: EvaluationResult) -> bool:
    """Store the result in its bundle's captioner.json (``captioner models`` and the web app show it).

    Only bundles record results; a hub model or a predictions file has nowhere to keep them."""
    if result.bundle_dir is None:
        return False
    from captioner.models.bundle import record_metrics

    record_metrics(result.bundle_dir, result.split, result.bundle_metrics())
    return True
