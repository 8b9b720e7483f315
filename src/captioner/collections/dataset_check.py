"""What a trainer would trip over in a training set: ``captioner dataset check FOLDER``.

Problems found: images without a caption file, caption files without an image, empty captions, stem conflicts
(two images sharing one caption file), the same image twice (by content), a missing trigger word, unreadable
images, and captions longer than CLIP's 77-token text limit (the rest is cut off in training). Tokens are
counted with the CLIP tokenizer of the caption-scoring CLIP when it is on this machine; otherwise words are
counted, and the report says so.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from captioner.collections.caption_files import STATE_FOLDER, caption_path, read_caption, stem_conflicts
from captioner.collections.walk import find_images
from captioner.errors import CaptionerError, DataError

CLIP_TOKENS = 77  # CLIP's text limit, start and end tokens included
KINDS = {"no-caption": "image without a caption file", "no-image": "caption file without an image",
         "empty": "empty caption", "conflict": "stem conflict", "duplicate": "the same image twice",
         "no-trigger": "trigger word missing", "unreadable": "unreadable image", "too-long": "caption too long"}


@dataclass(frozen=True)
class Problem:
    kind: str  # one of KINDS
    path: str
    detail: str = ""


@dataclass
class Report:
    folder: str
    images: int = 0
    captions: int = 0
    counted: str = "words"  # "tokens" (a CLIP tokenizer) or "words"
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"folder": self.folder, "images": self.images, "caption_files": self.captions,
                "length_counted_in": self.counted,
                "problems": [{"kind": p.kind, "path": p.path, "detail": p.detail} for p in self.problems]}


def check_dataset(folder: str | os.PathLike, extension: str = ".txt", trigger: str | None = None,
                  counter=None) -> Report:
    """Everything wrong with the training set in ``folder`` (walked recursively, hidden folders skipped)."""
    from captioner.data.images import load_image

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    images = list(find_images([root]))
    counter = counter or length_counter()
    report = Report(str(root), len(images), counted=counter.unit)
    problems = report.problems
    conflicts = stem_conflicts(images, extension)
    for target, owners in conflicts.items():
        problems.append(Problem("conflict", str(target), "shared by " + ", ".join(str(path) for path in owners)))
    seen: dict[str, Path] = {}
    for image in images:
        try:
            data = image.read_bytes()
            load_image(data, name=str(image))
        except (OSError, CaptionerError, ValueError) as error:
            problems.append(Problem("unreadable", str(image), str(error)))
            data = None
        if data is not None:
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                problems.append(Problem("duplicate", str(image), f"same content as {seen[digest]}"))
            seen.setdefault(digest, image)
        target = caption_path(image, extension)
        text = read_caption(target)
        if text is None:
            problems.append(Problem("no-caption", str(image), f"no {target.name}"))
            continue
        if target in conflicts:
            continue
        if not text:
            problems.append(Problem("empty", str(target)))
            continue
        if trigger and not all(line.strip().startswith(trigger) for line in text.splitlines() if line.strip()):
            problems.append(Problem("no-trigger", str(target), f"does not start with {trigger!r}"))
        longest = max(counter(line) for line in text.splitlines() if line.strip())
        if longest > CLIP_TOKENS:
            problems.append(Problem("too-long", str(target), f"{longest} {counter.unit} (CLIP reads {CLIP_TOKENS} "
                                                            "tokens)"))
    wanted = {caption_path(image, extension) for image in images}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith(".") and name != STATE_FOLDER)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith(extension) and not name.startswith("."):
                report.captions += 1
                if path not in wanted:
                    problems.append(Problem("no-image", str(path)))
    return report


class _Words:
    unit = "words"

    def __call__(self, text: str) -> int:
        return len(text.split())


class _Tokens:
    unit = "tokens"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> int:
        return len(self.tokenizer(text, truncation=False)["input_ids"])


def length_counter():
    """CLIP's tokenizer when a CLIP is in the local cache (or CAPTIONER_SCORE_MODEL names a folder), else words."""
    try:
        from transformers import CLIPTokenizerFast

        from captioner.evaluation.clipscore import clip_folder, score_model_name

        return _Tokens(CLIPTokenizerFast.from_pretrained(clip_folder(score_model_name())))
    except Exception:  # noqa: BLE001 - no CLIP here (or no transformers): count words and say so
        return _Words()
