"""Readers for the caption data set layouts on disk, and the detection that picks one.

Layouts (a data set is a folder):

- ``flickr8k``: the original zips: ``Flicker8k_Dataset/`` (or ``Flickr8k_Dataset/``) + ``Flickr8k.token.txt``
  + ``Flickr_8k.{train,dev,test}Images.txt``; the text files may sit in a ``Flickr8k_text/`` subfolder.
- ``csv``: ``Images/`` + ``captions.txt`` with the header ``image,caption``.
- ``flickr30k``: ``results_20130124.token`` or Kaggle's ``results.csv`` (``image_name| comment_number|
  comment``, also found inside ``flickr30k_images/`` as Kaggle's archive unpacks), images in
  ``flickr30k_images/`` (or ``flickr30k_images/flickr30k_images/``). The real ``results.csv`` has one row
  without its second separator (``2199200615.jpg| 4   A dog runs across the grass .``); such rows are read
  (the caption follows the number) and counted in ``notes``.
- ``karpathy``: ``dataset_flickr8k.json``, ``dataset_flickr30k.json`` or ``dataset_coco.json``.

Policy for damaged files: a line whose structure is wrong (no tab, no ``#N``, missing fields) stops the
reader with a DataError naming the file and line, because a silently shortened data set skews every
figure trained on it. Entries that are well formed but unusable (an empty caption, a name that is not an
image file such as Flickr8k's ``2258277193_586949ec62.jpg.1``) are skipped and reported in ``notes``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path

from captioner.data.records import SPLITS, CaptionDataset, ImageCaptions
from captioner.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")

FLICKR8K_TOKEN = "Flickr8k.token.txt"
FLICKR8K_SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
                        "test": "Flickr_8k.testImages.txt"}
FLICKR8K_TEXT_DIRS = (".", "Flickr8k_text")
FLICKR8K_IMAGE_DIRS = ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images")
CSV_CAPTIONS = "captions.txt"
CSV_IMAGE_DIRS = ("Images", "images")
FLICKR30K_FILES = ("results_20130124.token", "results.csv", "flickr30k_images/results.csv")
FLICKR30K_IMAGE_DIRS = ("flickr30k_images/flickr30k_images", "flickr30k_images", "Images", "images")
KARPATHY_FILES = ("dataset_flickr8k.json", "dataset_flickr30k.json", "dataset_coco.json")
KARPATHY_IMAGE_DIRS = {"flickr8k": FLICKR8K_IMAGE_DIRS, "flickr30k": FLICKR30K_IMAGE_DIRS,
                       "coco": ("coco", "images", "Images")}
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}

LAYOUT_HELP = ("flickr8k (Flicker8k_Dataset/ + Flickr8k.token.txt + Flickr_8k.*Images.txt), "
               "csv (Images/ + captions.txt), flickr30k (flickr30k_images/ + results_20130124.token or results.csv), "
               "karpathy (dataset_flickr8k.json, dataset_flickr30k.json or dataset_coco.json)")


# ---------------------------------------------------------------- detection

def _find_flickr8k_text(root: Path) -> Path | None:
    for folder in FLICKR8K_TEXT_DIRS:
        if (root / folder / FLICKR8K_TOKEN).is_file():
            return (root / folder).resolve()
    return None


def _first_file(root: Path, names) -> Path | None:
    return next((root / n for n in names if (root / n).is_file()), None)


def detect_layout(root) -> str:
    """Name of the layout of the data set folder ``root``: flickr8k, csv, flickr30k or karpathy."""
    root = _existing_folder(root)
    if _find_flickr8k_text(root):
        return "flickr8k"
    if (root / CSV_CAPTIONS).is_file():
        return "csv"
    if _first_file(root, FLICKR30K_FILES):
        return "flickr30k"
    if _first_file(root, KARPATHY_FILES):
        return "karpathy"
    raise DataError(f"{root} holds no caption data set I know; I look for {LAYOUT_HELP}. "
                    "Run 'captioner data download flickr8k' to fetch Flickr8k")


def read_dataset(root) -> CaptionDataset:
    """Read the data set in folder ``root`` (any layout) into images with their raw captions."""
    root = _existing_folder(root)
    layout = detect_layout(root)
    return {"flickr8k": read_flickr8k, "csv": read_csv_layout, "flickr30k": read_flickr30k,
            "karpathy": read_karpathy}[layout](root)


def _existing_folder(root) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"data set folder {path} does not exist; check the path, or run "
                        "'captioner data download flickr8k' (or 'captioner data shapes') to create one")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; give the data set folder, not a file in it")
    return path.resolve()


def _pick_dir(root: Path, candidates) -> Path:
    """The first candidate folder that exists, else the first candidate (so a later check can say it is missing)."""
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return root / candidates[0]


# ---------------------------------------------------------------- text helpers

def read_text(path: Path, allow_empty: bool = False) -> str:
    """The whole file as UTF-8 text; a byte that is not UTF-8 is a DataError naming the line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start
        line = data[:offset].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: byte 0x{data[offset]:02x} is not UTF-8 text; "
                        "save the file as UTF-8 and try again") from None
    if not text.strip() and not allow_empty:
        raise DataError(f"{path} is empty; restore it from the data set's archive")
    return text


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


class _Collector:
    """Gathers captions per image in file order, skipping unusable entries with a note."""

    def __init__(self, source: Path):
        self.source = source
        self.captions: dict[str, list[str]] = {}
        self.not_images: Counter[str] = Counter()
        self.empty = 0

    def add(self, image: str, caption: str) -> None:
        image, caption = image.strip(), caption.strip()
        if not _is_image_name(image):
            self.not_images[image] += 1
        elif not caption:
            self.empty += 1
        else:
            self.captions.setdefault(image, []).append(caption)

    def items(self) -> list[ImageCaptions]:
        if not self.captions:
            raise DataError(f"{self.source} holds no usable captions; restore it from the data set's archive")
        return [ImageCaptions(image, tuple(caps)) for image, caps in self.captions.items()]

    def notes(self) -> list[str]:
        notes = [f"{self.source.name}: skipped {count} caption(s) of '{name}': not an image file name "
                 f"(no such image exists{'; a known quirk of Flickr8k' if name.endswith('.jpg.1') else ''})"
                 for name, count in self.not_images.items()]
        if self.empty:
            notes.append(f"{self.source.name}: skipped {self.empty} empty caption(s)")
        return notes


# ---------------------------------------------------------------- flickr8k and flickr30k token files

def _read_token_file(path: Path, collector: _Collector) -> None:
    """Lines ``IMAGE#N<tab>caption`` (Flickr8k.token.txt, results_20130124.token)."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        image, hash_, index = key.rpartition("#")
        if not tab or not hash_ or not image or not index.strip().isdigit():
            raise DataError(f"{path}, line {number}: expected 'IMAGE#N<tab>CAPTION', found {line[:60]!r}; "
                            "restore the file from the data set's archive")
        collector.add(image, caption)


def _read_split_files(text_dir: Path, known: set[str], notes: list[str]) -> dict[str, list[str]] | None:
    paths = {split: text_dir / name for split, name in FLICKR8K_SPLIT_FILES.items()}
    present = [p for p in paths.values() if p.is_file()]
    if not present:
        notes.append("no official split files: a seeded split is used")
        return None
    if len(present) != len(paths):
        missing = ", ".join(p.name for p in paths.values() if not p.is_file())
        raise DataError(f"{text_dir}: split file(s) {missing} missing; restore them from Flickr8k_text.zip, "
                        "or remove all three split files to use a seeded split")
    splits, seen = {}, {}
    for split, path in paths.items():
        names = []
        for number, line in enumerate(read_text(path, allow_empty=True).splitlines(), start=1):
            name = line.strip()
            if not name:
                continue
            if name in seen:
                raise DataError(f"{path}, line {number}: {name} is already in the {seen[name]} split; "
                                "each image may be in one split only")
            seen[name] = split
            if name in known:
                names.append(name)
            else:
                notes.append(f"{path.name}: {name} has no captions; left out of the {split} split")
        splits[split] = names
    return splits


def read_flickr8k(root: Path) -> CaptionDataset:
    text_dir = _find_flickr8k_text(root)
    if text_dir is None:
        raise DataError(f"{root}: no {FLICKR8K_TOKEN} here or in Flickr8k_text/")
    token_path = text_dir / FLICKR8K_TOKEN
    collector = _Collector(token_path)
    _read_token_file(token_path, collector)
    items = collector.items()
    notes = collector.notes()
    splits = _read_split_files(text_dir, {item.image for item in items}, notes)
    return CaptionDataset(root=root, images_dir=_pick_dir(root, FLICKR8K_IMAGE_DIRS), layout="flickr8k",
                          name="flickr8k", items=items, splits=splits, notes=notes)


def read_flickr30k(root: Path) -> CaptionDataset:
    path = _first_file(root, FLICKR30K_FILES)
    collector = _Collector(path)
    quirks = []
    if path.suffix == ".token":
        _read_token_file(path, collector)
    else:
        quirks = _read_pipe_csv(path, collector)
    return CaptionDataset(root=root, images_dir=_pick_dir(root, FLICKR30K_IMAGE_DIRS), layout="flickr30k",
                          name="flickr30k", items=collector.items(), splits=None, notes=collector.notes() + quirks)


# IMAGE| N| CAPTION, or IMAGE| N CAPTION (the second separator missing); a caption may itself hold "|"
PIPE_ROW = re.compile(r"^(?P<image>[^|]*)\|\s*(?P<number>\d+)\s*(?P<separator>\|?)(?P<caption>.*)$")


def _read_pipe_csv(path: Path, collector: _Collector) -> list[str]:
    """``results.csv``: header ``image_name| comment_number| comment``, fields separated by ``|``, read as
    lines (not as CSV: quotes in a caption are part of it). Returns notes on rows read despite a quirk."""
    lines = read_text(path).splitlines()
    header = [field.strip() for field in lines[0].split("|")]
    if header != ["image_name", "comment_number", "comment"]:
        raise DataError(f"{path}, line 1: expected the header 'image_name| comment_number| comment', "
                        f"found {lines[0][:60]!r}")
    unseparated = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = PIPE_ROW.match(line)
        if row is None:
            raise DataError(f"{path}, line {number}: expected 'IMAGE| N| CAPTION', found {line[:60]!r}; "
                            "fix or remove that line")
        if not row["separator"]:
            unseparated.append(number)
        collector.add(row["image"], row["caption"])
    if not unseparated:
        return []
    listed = ", ".join(map(str, unseparated[:5])) + (" ..." if len(unseparated) > 5 else "")
    return [f"{path.name}: read {len(unseparated)} row(s) without the separator after the comment number "
            f"(line {listed}), taking the text after the number as the caption"]


# ---------------------------------------------------------------- csv layout

def read_csv_layout(root: Path) -> CaptionDataset:
    path = root / CSV_CAPTIONS
    collector = _Collector(path)
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = [field.strip().lower() for field in next(reader)]
        if header != ["image", "caption"]:
            raise DataError(f"{path}, line 1: expected the header 'image,caption', found {','.join(header)[:60]!r}")
        for row in reader:
            if not row or not any(field.strip() for field in row):
                continue
            if len(row) != 2:
                raise DataError(f"{path}, line {reader.line_num}: expected 2 fields (image,caption), found "
                                f"{len(row)}; put captions that hold commas in double quotes")
            collector.add(row[0], row[1])
    except csv.Error as error:
        raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({error})") from None
    notes = collector.notes()
    items = collector.items()
    splits = None
    if any((root / name).is_file() for name in FLICKR8K_SPLIT_FILES.values()):
        splits = _read_split_files(root, {item.image for item in items}, notes)
    name = root.name.lower() or "dataset"
    return CaptionDataset(root=root, images_dir=_pick_dir(root, CSV_IMAGE_DIRS), layout="csv", name=name,
                          items=items, splits=splits, notes=notes)


# ---------------------------------------------------------------- karpathy json

def read_karpathy(root: Path) -> CaptionDataset:
    path = _first_file(root, KARPATHY_FILES)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from None
    name = path.stem.removeprefix("dataset_")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{path}: expected an object with an 'images' list (Karpathy split format)")
    collector = _Collector(path)
    splits: dict[str, list[str]] = {split: [] for split in SPLITS}
    unknown_splits: Counter[str] = Counter()
    for number, entry in enumerate(data["images"], start=1):
        try:
            filename = str(entry["filename"])
            folder = str(entry.get("filepath") or "")
            image = f"{folder}/{filename}" if folder else filename
            split = str(entry.get("split", ""))
            sentences = entry["sentences"]
            for sentence in sentences:
                collector.add(image, str(sentence.get("raw") or " ".join(sentence.get("tokens", []))))
        except (KeyError, TypeError, AttributeError):
            raise DataError(f"{path}: image entry {number} lacks 'filename' or 'sentences' "
                            "(Karpathy split format)") from None
        if image in collector.captions:
            if split in KARPATHY_SPLITS:
                splits[KARPATHY_SPLITS[split]].append(image)
            else:
                unknown_splits[split] += 1
    notes = collector.notes()
    notes.extend(f"{path.name}: {count} image(s) with split {split!r} left out of every split"
                 for split, count in unknown_splits.items())
    items = collector.items()
    images_dir = _karpathy_images_dir(root, name, items)
    return CaptionDataset(root=root, images_dir=images_dir, layout="karpathy", name=name, items=items,
                          splits=splits, notes=notes)


def _karpathy_images_dir(root: Path, name: str, items: list[ImageCaptions]) -> Path:
    """The folder next to the JSON file, or a conventional subfolder, that holds the first images."""
    sample = [item.image for item in items[:20]]
    candidates = [root, *(root / d for d in KARPATHY_IMAGE_DIRS.get(name, ()))]
    candidates += [root / d for d in (*FLICKR8K_IMAGE_DIRS, *FLICKR30K_IMAGE_DIRS) if root / d not in candidates]
    best = max(candidates, key=lambda folder: sum((folder / image).is_file() for image in sample))
    if not any((best / image).is_file() for image in sample):
        return root / KARPATHY_IMAGE_DIRS.get(name, ("images",))[0]
    return best
