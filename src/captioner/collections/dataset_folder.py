"""Training sets under one root folder, as the review page (``/dataset``) sees them: which folders it may open,
each image with its caption file's text, and the edits a person makes, written back atomically.

Where it may look: only under the root (``CAPTIONER_DATASETS_DIR``). A folder is named by its path relative to
the root; an absolute path, a ``..`` part, a hidden part (``.captioner``) or a symbolic link that leads out of
the root is refused, with one message. Links that stay inside the root are followed. Every path is resolved
and checked to lie under the resolved root before anything is read or written, and so is each image and caption
file (a caption file that is a link to a file outside is neither shown nor written).

Saving: the page sends the text with the version it read (a digest of the file's bytes). When the file changed
on disk since, the save is refused with :class:`CaptionConflict`, which carries the text on disk, so the person
can pick. Writes go only to the caption file beside the image, through :func:`captioner.files.write_text_atomic`.
Edits across the set (find and replace, tags, the trigger word; :mod:`.caption_edits`) change the caption files
that exist, never create one for an image without a caption.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

from captioner.collections.caption_edits import Edit
from captioner.collections.caption_files import RECORDS_FILE, STATE_FOLDER, caption_path, read_records
from captioner.collections.walk import IMAGE_SUFFIXES
from captioner.errors import CaptionerError, DataError
from captioner.files import write_text_atomic

NO_FILE = "none"  # the version of a caption file that does not exist
MAX_DEPTH = 4  # how deep under the root folders are listed
MAX_NAME = 1000  # characters of a folder or image name
_writing = threading.Lock()  # one check-then-write at a time in this process


class RefusedPath(DataError):
    """A folder or file name that points outside the root (or at a hidden folder)."""


class NotFound(DataError):
    """No such folder or image under the root."""


class CaptionConflict(CaptionerError):
    """The caption file changed on disk since the text being saved was read."""

    def __init__(self, folder: str, item: "DatasetItem", text: str):
        super().__init__(f"{item.caption_file} changed on disk since it was read; pick the text to keep and "
                         "save again")
        self.folder = folder  # the folder's name under the root
        self.item = item  # as it is on disk now
        self.text = text  # what the person tried to save


@dataclass(frozen=True)
class DatasetItem:
    """One image of a folder and its caption file, as the page shows it."""

    image: str  # the image's file name in the folder
    caption_file: str  # the caption file's name beside it
    text: str | None  # the caption file's text (as trainers read it), None when there is none
    version: str  # digest of the caption file's bytes; NO_FILE when there is none
    image_version: str  # changes when the image file changes (for thumbnails)
    written_by: str | None  # "captioner" (still exactly what captioner wrote), "person", or None (no file)
    shared: bool = False  # another image has this stem: neither may get a caption file (a stem conflict)

    def to_dict(self) -> dict:
        return asdict(self)


def version_of(data: bytes | None) -> str:
    return NO_FILE if data is None else hashlib.sha256(data).hexdigest()[:20]


class DatasetRoot:
    """The folders under ``root`` that the review page may open."""

    def __init__(self, root: str | os.PathLike, extension: str = ".txt"):
        self.root = Path(root).expanduser().resolve()
        self.extension = extension
        if not self.root.is_dir():
            raise DataError(f"CAPTIONER_DATASETS_DIR {os.fspath(root)!r} is not a folder; create it or set "
                            "another one")

    def folders(self) -> list[dict]:
        """Every folder under the root with images in it (hidden folders and links out of the root left out),
        with how many images and caption files it holds; the root itself is ``"."``."""
        found = []
        seen: set[Path] = set()

        def visit(path: Path, depth: int) -> None:
            real = path.resolve()
            if real in seen or not self.contains(real):
                return
            seen.add(real)
            folder = DatasetFolder(self, path.relative_to(self.root).as_posix() or ".", real)
            images = folder.images()
            if images:
                captions = sum(1 for image in images if folder.has_caption_file(image))
                found.append({"name": folder.name, "images": len(images), "captions": captions})
            if depth < MAX_DEPTH:
                for child in _sorted_entries(path):
                    if child.is_dir() and not child.name.startswith("."):
                        visit(child, depth + 1)

        visit(self.root, 0)
        return found

    def contains(self, path: Path) -> bool:
        return path == self.root or path.is_relative_to(self.root)

    def folder(self, name: str) -> "DatasetFolder":
        """The folder ``name`` (relative to the root, "/" between parts; "." for the root itself)."""
        parts = _relative_parts(name, "folder")
        path = self.root.joinpath(*parts)
        real = path.resolve()
        if not self.contains(real):
            raise RefusedPath(f"the folder {name!r} leads outside the training sets folder (a symbolic link "
                              "out of it); only folders inside it can be opened")
        if not real.is_dir():
            raise NotFound(f"there is no folder {name!r} in the training sets folder")
        return DatasetFolder(self, PurePosixPath(*parts).as_posix() if parts else ".", real)


class DatasetFolder:
    """One folder of images and their caption files (the images directly in it, not in its subfolders)."""

    def __init__(self, root: DatasetRoot, name: str, path: Path):
        self.root, self.name, self.path = root, name, path
        self.extension = root.extension

    def images(self) -> list[Path]:
        """The images in the folder, by name; hidden files and links leading out of the root left out."""
        images = []
        for entry in _sorted_entries(self.path):
            if entry.name.startswith(".") or entry.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if entry.is_file() and self.root.contains(entry.resolve()):
                images.append(entry)
        return images

    def has_caption_file(self, image: Path) -> bool:
        target = caption_path(image, self.extension)
        return target.is_file() and self.root.contains(target.resolve())

    def items(self) -> list[DatasetItem]:
        images = self.images()
        stems = Counter(caption_path(image, self.extension) for image in images)
        records = self._records()
        return [self._item(image, records, stems[caption_path(image, self.extension)] > 1) for image in images]

    def image(self, name: str) -> Path:
        """The image ``name`` of this folder (a file name, no folder part)."""
        parts = _relative_parts(name, "image")
        if len(parts) != 1:
            raise RefusedPath(f"the image must be a file name in the folder, not the path {name!r}")
        path = self.path / parts[0]
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise RefusedPath(f"{name!r} is not an image name (it should end in .jpg, .png, .webp, ...)")
        if not self.root.contains(path.resolve()):
            raise RefusedPath(f"the image {name!r} is a link leading outside the training sets folder")
        if not path.is_file():
            raise NotFound(f"there is no image {name!r} in the folder {self.name!r}")
        return path

    def item(self, name: str) -> DatasetItem:
        image = self.image(name)
        shared = sum(1 for other in self.images()
                     if caption_path(other, self.extension) == caption_path(image, self.extension)) > 1
        return self._item(image, self._records(), shared)

    def save(self, name: str, text: str, version: str) -> DatasetItem:
        """Write ``text`` to the image's caption file, unless it changed since ``version`` was read
        (:class:`CaptionConflict`)."""
        if not isinstance(text, str) or not isinstance(version, str):
            raise DataError("a save needs the text and the version it was read at, both strings")
        with _writing:
            item = self.item(name)
            if item.shared:
                raise DataError(f"{item.caption_file} would be shared by two images with one stem; rename one of "
                                "them first")
            if item.version != version:
                raise CaptionConflict(self.name, item, text)
            _write(self._caption_target(self.image(name)), text)
            return self.item(name)

    def edit(self, change: Edit, names: Iterable[str] | None = None, apply: bool = True) -> list[DatasetItem]:
        """``change`` applied to the caption files of ``names`` (default: every image), those that exist;
        the items whose text it changes (written when ``apply``, else only as they would become)."""
        with _writing:
            chosen = self.items() if names is None else [self.item(name) for name in dict.fromkeys(names)]
            changed = []
            for item in chosen:
                if item.text is None or item.shared:
                    continue
                new = change(item.text).strip()
                if new == item.text:
                    continue
                if apply:
                    _write(self._caption_target(self.image(item.image)), new)
                    item = self.item(item.image)
                else:
                    item = DatasetItem(**{**item.to_dict(), "text": new})
                changed.append(item)
            return changed

    def records_root(self) -> Path:
        """Where captioner's record of the caption files it wrote lives: the nearest folder, from this one up
        to the root, with a ``.captioner/`` state; else this folder (where a run from this page starts one)."""
        folder = self.path
        while True:
            if (folder / STATE_FOLDER / RECORDS_FILE).is_file():
                return folder
            if folder == self.root.root or folder.parent == folder:
                return self.path
            folder = folder.parent

    def _records(self) -> tuple[Path, dict[str, dict]]:
        base = self.records_root()
        return base, read_records(base / STATE_FOLDER / RECORDS_FILE)

    def _caption_target(self, image: Path) -> Path:
        target = caption_path(image, self.extension)
        if not self.root.contains(target.resolve()):
            raise RefusedPath(f"{target.name} is a link leading outside the training sets folder; it is "
                              "neither read nor written")
        return target

    def _item(self, image: Path, records: tuple[Path, dict[str, dict]], shared: bool) -> DatasetItem:
        target = caption_path(image, self.extension)
        stat = image.stat()
        data = None
        try:
            data = self._caption_target(image).read_bytes()
        except (FileNotFoundError, IsADirectoryError, RefusedPath):
            data = None
        text = None if data is None else data.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip()
        written_by = None
        if text is not None:
            base, known = records
            record = known.get(Path(os.path.relpath(target, base)).as_posix())
            written_by = "captioner" if record and record.get("Text") == text else "person"
        return DatasetItem(image.name, target.name, text, version_of(data), f"{stat.st_mtime_ns:x}-{stat.st_size:x}",
                           written_by, shared)


def _write(target: Path, text: str) -> None:
    try:
        write_text_atomic(target, _file_text(text))
    except OSError as error:  # a read-only folder, a folder where the file should be, a full disk
        raise DataError(f"{target.name} could not be written ({error.strerror or error}); check the folder's "
                        "permissions and free space") from None


def _file_text(text: str) -> str:
    """What goes into a caption file for ``text``: trailing blank space dropped, one final line break (as
    captioner's own caption files end)."""
    text = text.replace("\r\n", "\n").rstrip()
    return text + "\n" if text else ""


def _relative_parts(name: str, what: str) -> tuple[str, ...]:
    """The parts of a relative name, or RefusedPath for an absolute one, ``..``, hidden parts and odd characters."""
    if not isinstance(name, str) or not name.strip():
        raise RefusedPath(f"name the {what}: its path inside the training sets folder")
    if len(name) > MAX_NAME or "\x00" in name or "\\" in name:
        raise RefusedPath(f"the {what} name {name[:60]!r} is not a path inside the training sets folder")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or os.path.isabs(name):
        raise RefusedPath(f"the {what} {name[:60]!r} is an absolute path; name it relative to the training "
                          "sets folder")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise RefusedPath(f"the {what} {name[:60]!r} climbs out with '..'; name a path inside the training "
                          "sets folder")
    if any(part.startswith(".") for part in parts):
        raise RefusedPath(f"the {what} {name[:60]!r} is hidden (its name starts with '.'); hidden folders are "
                          "never opened")
    return parts


def _sorted_entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir(), key=lambda path: path.name)
    except OSError:
        return []
