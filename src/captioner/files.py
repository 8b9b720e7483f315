"""Writing files and folders so that a reader never sees half of one.

Everything the project writes for later (bundles, prepared folders, reports, caches) goes through a
temporary sibling that is renamed into place only when complete; an interruption leaves the old version
or nothing, never a mixture.
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


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """Write JSON to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, ensure_ascii=False)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_file(target: str | os.PathLike) -> Iterator[Path]:
    """Give a path beside ``target`` (same suffix, not yet created) for a writer to create; when the block
    ends without error the file is flushed to disk and renamed over ``target``, and when it fails it is
    removed and ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        yield staging
        with open(staging, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


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
