"""Caption metrics from the official COCO caption evaluation code (pycocoevalcap).

:func:`score_captions` tokenises hypotheses and references with the PTB tokenizer and runs pycocoevalcap's
BLEU-1..4, METEOR, ROUGE-L and CIDEr (CIDEr-D, as in the COCO leaderboard), plus SPICE when its Stanford
models are installed. Values are fractions as pycocoevalcap returns them (BLEU, METEOR, ROUGE-L in 0..1;
CIDEr in 0..10); papers print them x100. Without Java it falls back to a pure-Python tokenizer and the
pure-Python scorers, and says in ``Scores.notes`` what is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Mapping

from captioner.evaluation.meteor import MeteorError, meteor_score
from captioner.evaluation.tokenize import (TokenizerError, java_available, ptb_tokenize, pycocoevalcap_dir,
                                           python_tokenize)

BLEU_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")
METRIC_KEYS = (*BLEU_KEYS, "METEOR", "ROUGE-L", "CIDEr")  # always present when Java runs
OPTIONAL_KEYS = ("SPICE",)  # present only when SPICE's models are installed
SPICE_TIMEOUT_S = 1800.0  # SPICE parses every caption with CoreNLP: minutes for a Flickr8k test split


class Scores(dict):
    """Metric name -> value (a plain dict, so it serialises as one), with what else a reader needs."""

    def __init__(self, values: Mapping[str, float], notes: list[str], tokenizer: str,
                 per_image: dict[str, dict[str, float]]):
        super().__init__(values)
        self.notes = notes  # what was skipped or replaced and why, one sentence each
        self.tokenizer = tokenizer  # "ptb" (Stanford PTBTokenizer, the official one) or "python" (fallback)
        self.per_image = per_image  # image -> {metric: that image's score}, for best/worst examples


def check_inputs(predictions: Mapping[str, str], references: Mapping[str, list[str]]) -> None:
    """Raise ValueError naming what is wrong with the predictions or references."""
    if not isinstance(predictions, Mapping) or not predictions:
        raise ValueError("there are no predicted captions to score")
    missing = [image for image in predictions if image not in references]
    if missing:
        shown = ", ".join(map(str, missing[:3])) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ValueError(f"{len(missing)} predicted images have no reference captions: {shown}")
    for image, caption in predictions.items():
        if not isinstance(caption, str):
            raise ValueError(f"the caption of {image} must be text, not {type(caption).__name__}")
        refs = references[image]
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"the references of {image} must be a non-empty list of captions")


def spice_models_installed() -> bool:
    """SPICE needs Stanford CoreNLP 3.6.0 beside its jar; pycocoevalcap only downloads it on first use."""
    lib = pycocoevalcap_dir() / "spice" / "lib"
    return (lib / "stanford-corenlp-3.6.0.jar").is_file() and (lib / "stanford-corenlp-3.6.0-models.jar").is_file()


def score_captions(predictions: dict[str, str], references: dict[str, list[str]], *,
                   java: bool | None = None) -> Scores:
    """Score one caption per image against that image's reference captions, the COCO way.

    ``java=None`` uses Java when it is on PATH; ``java=False`` forces the pure-Python path (no METEOR,
    no SPICE); ``java=True`` requires Java. Corpus-level values come back as a :class:`Scores` dict.
    """
    check_inputs(predictions, references)
    if java is None:
        java = java_available()
    elif java and not java_available():
        raise ValueError("java=True but no 'java' executable is on PATH; install Java 11+ or pass java=False")
    notes: list[str] = []
    images = list(predictions)
    hypotheses, reference_lists = tokenize_all(images, predictions, references, java, notes)
    tokenizer = "python" if not java or any(n.startswith("PTB") for n in notes) else "ptb"
    res = {image: [hyp] for image, hyp in zip(images, hypotheses)}
    gts = dict(zip(images, reference_lists))

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    values: dict[str, float] = {}
    per_image: dict[str, dict[str, float]] = {image: {} for image in images}
    bleu, bleu_each = Bleu(4).compute_score(gts, res, verbose=0)
    for key, value, each in zip(BLEU_KEYS, bleu, bleu_each):
        values[key] = float(value)
        if key == "BLEU-4":
            _spread(per_image, key, images, each)
    if java:
        try:
            value, each = meteor_score(hypotheses, reference_lists)
            values["METEOR"] = value
            _spread(per_image, "METEOR", images, each)
        except MeteorError as error:
            notes.append(f"METEOR missing: {error}.")
    else:
        notes.append("METEOR missing: it needs Java ('java' on PATH); BLEU, ROUGE-L and CIDEr are pure Python "
                     "and were computed with a Python stand-in for the PTB tokenizer.")
    for key, scorer in (("ROUGE-L", Rouge()), ("CIDEr", Cider())):
        value, each = scorer.compute_score(gts, res)
        values[key] = float(value)
        _spread(per_image, key, images, each)
    if java and spice_models_installed():
        try:
            values["SPICE"] = spice_score(images, hypotheses, reference_lists)
        except (OSError, ValueError, subprocess.SubprocessError) as error:
            notes.append(f"SPICE missing: it failed ({error}).")
    elif java:
        notes.append("SPICE skipped: it needs the Stanford CoreNLP 3.6.0 models in pycocoevalcap/spice/lib "
                     "(python -m pycocoevalcap.spice.get_stanford_models downloads them, about 1 GB).")
    return Scores({k: values[k] for k in (*METRIC_KEYS, *OPTIONAL_KEYS) if k in values}, notes, tokenizer, per_image)


def tokenize_all(images, predictions, references, java: bool, notes: list[str]):
    """Tokenised hypotheses and reference lists, in ``images`` order, in one tokenizer run."""
    sentences = [predictions[image] for image in images]
    counts = [len(references[image]) for image in images]
    for image in images:
        sentences.extend(references[image])
    tokens = None
    if java:
        try:
            tokens = ptb_tokenize(sentences)
        except TokenizerError as error:
            notes.append(f"PTB tokenizer failed ({error}); used the Python stand-in, scores may differ slightly.")
    if tokens is None:
        tokens = python_tokenize(sentences)
    hypotheses, rest = tokens[:len(images)], tokens[len(images):]
    reference_lists, start = [], 0
    for count in counts:
        reference_lists.append(rest[start:start + count])
        start += count
    return hypotheses, reference_lists


def _spread(per_image: dict, key: str, images: list[str], values) -> None:
    for image, value in zip(images, values):
        per_image[image][key] = float(value)


def spice_score(images: list[str], hypotheses: list[str], reference_lists: list[list[str]]) -> float:
    """Corpus SPICE (mean of per-image F-scores), run like pycocoevalcap's Spice but with a time limit."""
    folder = pycocoevalcap_dir() / "spice"
    with tempfile.TemporaryDirectory(prefix="captioner-spice-") as work:
        source, target = os.path.join(work, "in.json"), os.path.join(work, "out.json")
        with open(source, "w", encoding="utf-8") as out:
            json.dump([{"image_id": i, "test": h, "refs": r} for i, h, r in zip(images, hypotheses, reference_lists)], out)
        subprocess.run(["java", "-jar", "-Xmx8G", "spice-1.0.jar", source, "-out", target, "-subset", "-silent"],
                       cwd=folder, check=True, timeout=SPICE_TIMEOUT_S, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with open(target, encoding="utf-8") as data:
            results = json.load(data)
    scores = [float(item["scores"]["All"]["f"]) for item in results
              if item["scores"]["All"]["f"] not in (None, "NaN")]
    if not scores:
        raise ValueError("SPICE returned no scores")
    return sum(scores) / len(scores)
