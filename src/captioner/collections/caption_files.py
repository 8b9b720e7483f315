"""Caption files beside images, the way training sets keep them (kohya sd-scripts, OneTrainer, musubi-tuner,
TagGUI): ``a.jpg`` gets ``a.txt`` (or the chosen extension) holding its caption and nothing else.

What a file holds: the trigger word first (keep-tokens settings rely on it, so it stays first when captioner's text
is appended to a person's), then the prefix, the text and the suffix, joined by the separator; the ``keywords`` style's text is its tags joined by the separator; with
``lines`` above 1, the best captions one per line (OneTrainer picks a line per step).

Trainers read every byte of a caption file, so captioner's record of what it wrote lives elsewhere: in a hidden
state folder, ``.captioner/``, inside the folder walked (trainers and the folder walk skip hidden folders).
Each record names the caption file, the model, style and settings, and exactly the text written. A file whose
text is not (or no longer) that text is a person's, and the shared rule of
:mod:`captioner.collections.existing_text` decides what happens to it. A record is written before its file,
so an interrupted run never leaves a file of captioner's that it would take for a person's.

Two images with one stem in one folder (``a.jpg`` and ``a.png``) would share a caption file: neither gets
one, and the run names both.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable

from captioner.collections.existing_text import KEPT, Decision, check_existing, decide
from captioner.collections.provenance import Provenance
from captioner.files import flush_to_disk, write_text_atomic

CAPTION_FORMATS = ("txt",)  # what --captions may name: plain caption files beside the images
STATE_FOLDER = ".captioner"  # hidden: trainers, the folder walk and ImageFolder all skip it
RECORDS_FILE = "caption-files.jsonl"  # one record per written caption file, appended; the last one counts
RESULTS_FILE = "results.jsonl"  # the results file of a run given no --out


@dataclass(frozen=True)
class CaptionFileSettings:
    """What goes into each caption file, and what happens to one already there."""

    extension: str = ".txt"  # the caption file's name is the image's stem plus this (kohya's caption_extension)
    trigger: str = ""  # always first, e.g. "sks dog" (kohya's keep_tokens keeps it in place when shuffling)
    prefix: str = ""  # after the trigger, before the text
    suffix: str = ""  # after the text
    separator: str = ", "  # between trigger, prefix, text and suffix, and between a keywords style's tags
    lines: int = 1  # the N best captions, one per line
    existing: str = "skip"  # a file captioner did not write (or a person edited): skip, replace, append, prepend

    def __post_init__(self) -> None:
        if not self.extension.startswith(".") or len(self.extension) < 2 or any(
                character in self.extension for character in "/\\"):
            raise ValueError(f"--caption-extension must look like .txt or .caption, not {self.extension!r}")
        if self.lines < 1:
            raise ValueError("--lines must be at least 1")
        check_existing(self.existing)

    @property
    def joiner(self) -> str:
        """Between a person's text and captioner's, with append or prepend."""
        return "\n" if self.lines > 1 else self.separator

    def line(self, text: str) -> str:
        return self.separator.join(part for part in (self.trigger, self.prefix, text.strip(), self.suffix) if part)

    def untriggered(self, text: str) -> str:
        """``text`` without its leading trigger word: beside a person's text (append, prepend) the trigger stays
        first in the file, so the rule for existing text sees what follows it. Several lines keep a trigger on
        each of captioner's lines and leave a person's lines as they are."""
        if not self.trigger or self.lines > 1:
            return text
        if text == self.trigger:
            return ""
        head = self.trigger + self.separator
        return text[len(head):] if text.startswith(head) else text

    def triggered(self, text: str) -> str:
        """``text`` with the trigger word put back first."""
        if not self.trigger or self.lines > 1:
            return text
        return self.separator.join(part for part in (self.trigger, text) if part)

    def content(self, texts: Iterable[str]) -> str:
        """The caption file's text for the captions ``texts`` (best first)."""
        return "\n".join(self.line(text) for text in list(texts)[:self.lines])

    def describe(self) -> str:
        protect = {"skip": "a caption file a person wrote (or edited) is left as it is",
                   "replace": "a caption file a person wrote is REPLACED",
                   "append": "the caption is added after a person's caption file text",
                   "prepend": "the caption is put before a person's caption file text"}[self.existing]
        return (f"Writing a caption file beside each image (a.jpg -> a{self.extension}); {protect} "
                f"(--existing {self.existing}).")


def caption_path(image: Path, extension: str) -> Path:
    """``a.jpg`` -> ``a.txt``: the caption file trainers look for beside ``image``."""
    return image.with_name(image.stem + extension) if image.suffix else image.with_name(image.name + extension)


def stem_conflicts(images: Iterable[Path], extension: str) -> dict[Path, list[Path]]:
    """The caption files two or more images would share, with those images."""
    claimed: dict[Path, list[Path]] = {}
    for image in images:
        claimed.setdefault(caption_path(Path(image), extension), []).append(Path(image))
    return {target: owners for target, owners in claimed.items() if len(owners) > 1}


def conflict_message(target: Path, images: list[Path]) -> str:
    return (f"stem conflict, no caption file written: {' and '.join(map(str, images))} would share {target}; "
            "rename one of them (or move it to another folder) and run again")


def caption_texts(row, settings: CaptionFileSettings) -> list[str]:
    """The texts of one image's result row, best first: the keywords style's tags joined by the separator, or
    the caption and its alternatives."""
    if row.decoding.get("style") == "keywords":
        tags = list(row.keywords) or [tag.strip() for tag in row.caption.split(",") if tag.strip()]
        return [settings.separator.join(tags)]
    texts = [row.caption] + [alternative["text"] for alternative in row.alternatives]
    return list(dict.fromkeys(text.strip() for text in texts if text and text.strip()))


def read_caption(path: Path) -> str | None:
    """A caption file's text as a trainer reads it (trailing blank space and a byte-order mark dropped), or
    None when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip()


@dataclass
class FilePlan:
    """What writing one image's caption file will do."""

    image: Path
    target: Path
    decision: Decision
    text: str  # captioner's own text (the whole file, unless a person's part is kept beside it)
    provenance: Provenance

    def describe(self) -> str:
        shown = f" {self.decision.value!r}" if self.decision.value is not None else ""
        return f"{self.target}: {self.decision.action}{shown}"


class CaptionFiles:
    """The caption files of the images under one folder, with the records of those captioner wrote."""

    def __init__(self, root: Path, settings: CaptionFileSettings):
        self.root = root
        self.settings = settings
        self.records_path = root / STATE_FOLDER / RECORDS_FILE
        self.records = read_records(self.records_path)

    def key(self, target: Path) -> str:
        return Path(os.path.relpath(target, self.root)).as_posix()

    def plan(self, image: Path, texts: list[str], provenance: Provenance) -> FilePlan:
        target = caption_path(image, self.settings.extension)
        text = self.settings.content(texts)
        record = self.records.get(self.key(target))
        settings = self.settings
        present = settings.untriggered(read_caption(target) or "")
        ours = settings.untriggered(record["Text"]) if record and record.get("Text") else None
        decision = decide([present] if present else [], ours, provenance.same_source(record),
                          settings.untriggered(text), settings.existing, settings.joiner)
        if decision.value is not None:
            decision = replace(decision, value=settings.triggered(decision.value))
        return FilePlan(image, target, decision, text, provenance)

    def write(self, plans: list[FilePlan]) -> int:
        """Carry out ``plans``: their records first (one append, flushed), then each file atomically; the
        number of files written."""
        plans = [plan for plan in plans if plan.decision.value is not None]
        if not plans:
            return 0
        new = {self.key(plan.target): plan.provenance.record(plan.text) for plan in plans}
        self.records_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.records_path, "a", encoding="utf-8") as out:
            out.write("".join(json.dumps({"File": key, **record}, ensure_ascii=False) + "\n"
                              for key, record in new.items()))
        flush_to_disk(self.records_path)
        self.records.update(new)
        for plan in plans:
            write_text_atomic(plan.target, plan.decision.value + "\n")
        return len(plans)


def read_records(path: Path) -> dict[str, dict]:
    """Caption file (relative to the folder) -> captioner's last record of it; a torn last line is ignored."""
    records: dict[str, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return records
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("File"), str):
            records[record.pop("File")] = record
    return records


class CaptionFileTargets:
    """The caption files of a run over several roots: each image's files are recorded in the state folder of
    the folder it was found under (a single image's, in its own folder)."""

    def __init__(self, roots: Iterable[str | os.PathLike], settings: CaptionFileSettings):
        self.settings = settings
        self.folders = [Path(root).absolute() for root in roots if Path(root).is_dir()]
        self._files: dict[Path, CaptionFiles] = {}
        self.conflicts: dict[Path, list[Path]] = {}
        self._blocked: set[Path] = set()
        self._planned: set[Path] = set()  # images whose caption file this run has planned

    @property
    def format_settings(self) -> dict:
        """The settings that shape a file's text (a change makes captioner rewrite its own text)."""
        return {name: value for name, value in asdict(self.settings).items() if name != "existing"}

    def find_conflicts(self, images: Iterable[Path]) -> dict[Path, list[Path]]:
        self.conflicts = stem_conflicts(images, self.settings.extension)
        self._blocked = {image.absolute() for owners in self.conflicts.values() for image in owners}
        return self.conflicts

    def blocked(self, image: Path) -> bool:
        return image.absolute() in self._blocked

    def planned(self, image: Path) -> bool:
        return image.absolute() in self._planned

    def files_for(self, image: Path) -> CaptionFiles:
        image = image.absolute()
        root = next((folder for folder in self.folders if image.is_relative_to(folder)), image.parent)
        if root not in self._files:
            self._files[root] = CaptionFiles(root, self.settings)
        return self._files[root]

    def plan(self, row) -> FilePlan:
        image = Path(row.path)
        self._planned.add(image.absolute())
        style = row.decoding.get("style", "caption")
        provenance = Provenance.of(row.model, {**row.decoding, "caption_file": self.format_settings}, style)
        return self.files_for(image).plan(image, caption_texts(row, self.settings), provenance)

    def write(self, plans: list[FilePlan]) -> int:
        by_files: dict[int, tuple[CaptionFiles, list[FilePlan]]] = {}
        for plan in plans:
            files = self.files_for(plan.image)
            by_files.setdefault(id(files), (files, []))[1].append(plan)
        return sum(files.write(group) for files, group in by_files.values())


__all__ = ["CAPTION_FORMATS", "KEPT", "RESULTS_FILE", "STATE_FOLDER", "CaptionFileSettings", "CaptionFileTargets",
           "CaptionFiles", "FilePlan", "caption_path", "caption_texts", "conflict_message", "read_caption",
           "stem_conflicts"]
