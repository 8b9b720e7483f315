"""Writing files and folders so that a reader never sees half of one.

Everything the project writes for later (bundles, prepared folders, reports, figures, caches, checkpoints)
goes through a temporary sibling that is renamed into place only when complete; an interruption leaves
the old version or nothing, never a mixture. This module is the only place that does the renaming.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TEMPORARY_PREFIX = ".tmp-"  # temporary siblings start with this (hidden, and easy to skip when listing)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it becomes ``path`` when the block ends without error
    and is removed when it fails. The temporary name ends like ``path`` (``.weights.h5``, ``.png``,
    ``.npy``), so writers that pick a format by the name's ending write the right one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` through a temporary file in the same folder."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data) -> Path:
    """Write JSON (indented, UTF-8) to ``path`` through a temporary file in the same folder."""
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary sibling left by an interrupted write (never a finished file)."""
    return Path(path).name.startswith(TEMPORARY_PREFIX)


def flush_to_disk(path: str | os.PathLike) -> None:
    """Make a written file survive a power cut (fsync) before it is renamed into place."""
    with open(path, "rb+") as written:
        os.fsync(written.fileno())


@contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Give an empty folder beside ``target`` to fill; when the block ends without error it becomes
    ``target`` (replacing an older one), and when it fails it is removed and ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            try:
                os.replace(staging, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
