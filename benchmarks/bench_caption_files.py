"""Training sets: a collection run writing a caption file beside each of 500 images (``--captions txt``, with a
trigger word and the ``.captioner/`` record of each file) against the same run writing only its results file,
for the DenseNet201 LSTM with random weights. The target: caption files cost at most 5% more. Each side runs
twice on a fresh copy of the folder's state, alternating, and the faster run of each counts."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_collections import BATCH, densenet_lstm, make_photos  # noqa: E402
from run import figure  # noqa: E402

IMAGES = 500
SIZE = (800, 600)  # a photo as exported for a training set


def one_run(captioner, decoding, folder: Path, out: Path, caption_files: bool) -> float:
    """Seconds for one collection run over ``folder``, from no results, state or caption files."""
    from captioner.collections import CollectionJob, CollectionSettings, run_collection
    from captioner.collections.caption_files import STATE_FOLDER, CaptionFileSettings

    out.unlink(missing_ok=True)
    shutil.rmtree(folder / STATE_FOLDER, ignore_errors=True)
    for written in folder.glob("*.txt"):
        written.unlink()
    job = CollectionJob(roots=(str(folder),), out=str(out), settings=CollectionSettings(batch_size=BATCH),
                        captions="txt" if caption_files else None,
                        caption_files=CaptionFileSettings(trigger="ohwx"))
    started = time.perf_counter()
    summary = run_collection(job, captioner, decoding)
    seconds = time.perf_counter() - started
    assert summary.captioned == len(list(folder.glob("*.jpg"))), summary.to_dict()
    if caption_files:
        assert len(list(folder.glob("*.txt"))) == summary.captioned
    return seconds


def run(quick: bool) -> list[dict]:
    from PIL import Image

    from captioner.models.base import Decoding

    count = 100 if quick else IMAGES
    decoding = Decoding(method="greedy", max_length=12)
    with tempfile.TemporaryDirectory(prefix="bench-caption-files-") as tmp:
        folder = Path(tmp) / "set"
        make_photos(folder, count, SIZE)
        captioner = densenet_lstm()
        captioner.caption([Image.new("RGB", (64, 64))] * BATCH, decoding)  # warm-up, at the batch size of the runs
        results_only, with_files = [], []
        for _ in range(rounds := 1 if quick else 2):
            results_only.append(one_run(captioner, decoding, folder, Path(tmp) / "rows.jsonl", False))
            with_files.append(one_run(captioner, decoding, folder, Path(tmp) / "rows.jsonl", True))
    best_plain, best_files = min(results_only), min(with_files)
    extra_ms = (best_files - best_plain) / count * 1000
    row = figure(f"training set, {count} images: caption files beside them vs results file only", count / best_files,
                 count / best_plain, "images/s", True,
                 f"DenseNet201 LSTM, random weights, greedy max 12, batch {BATCH}, {SIZE[0]}x{SIZE[1]} JPEGs; "
                 f"caption files cost {extra_ms:+.2f} ms an image ({best_files / best_plain - 1:+.1%}); target: at most "
                 f"+5%; best of {rounds} alternating runs each")
    print(json.dumps(row), file=sys.stderr, flush=True)
    return [row]


if __name__ == "__main__":
    from run import run_alone

    run_alone(run)
