"""Finding the images in folders: recursive, symlink loops visited once, images told by their content.

A file is taken when its first bytes are those of an image format the safe loader reads or of a RAW photo
(:mod:`captioner.collections.raw`), or when its name ends like an image's or a RAW photo's (so a damaged
``IMG_0001.jpg`` is reported as unreadable instead of passing unnoticed). Hidden files and folders (``.thumbnails``, ``.DS_Store``, half-written temporary files) are
left out. Symbolic links are followed, but each real folder is walked once, so a link back up the tree
cannot loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from captioner.collections.raw import HEAD_BYTES, RAW_SUFFIXES, raw_format
from captioner.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".heic", ".heif",
                            ".avif", ".hif"})
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")
SNIFF_BYTES = 32  # bytes read to recognise a format


def looks_like_image(head: bytes) -> bool:
    """Whether these first bytes of a file start an image format the safe loader reads."""
    return (head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM"))
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
            or (head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS))


def check_roots(roots: Iterable[str | os.PathLike]) -> None:
    """Fail with the first root that is neither a file nor a folder (before anything slow starts)."""
    for root in roots:
        if not os.path.exists(root):
            raise DataError(f"{os.fspath(root)}: no such file or folder")


def find_images(roots: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Every image file under ``roots`` (folders walked recursively, files taken as given), sorted by
    path within each folder; a root that does not exist is an error."""
    seen_folders: set[tuple[int, int]] = set()
    for root in roots:
        root = Path(root)
        if root.is_dir():
            yield from _walk(root, seen_folders)
        elif root.is_file():
            yield root
        else:
            raise DataError(f"{root}: no such file or folder")


def _walk(folder: Path, seen_folders: set[tuple[int, int]]) -> Iterator[Path]:
    try:
        identity = os.stat(folder)
    except OSError:
        return
    key = (identity.st_dev, identity.st_ino)
    if key in seen_folders:  # reached again through a symbolic link: already walked
        return
    seen_folders.add(key)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:  # unreadable folder: nothing to caption in it
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir():  # follows symbolic links; loops end at seen_folders
                yield from _walk(path, seen_folders)
            elif entry.is_file() and _is_image(path):
                yield path
        except OSError:
            continue


def _is_image(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES | RAW_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
            return looks_like_image(head[:SNIFF_BYTES]) or raw_format(head, path.suffix) is not None
    except OSError:
        return False
