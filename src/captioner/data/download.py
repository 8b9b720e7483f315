"""``captioner data download flickr8k``: fetch and unpack the Flickr8k zips, safely and resumably.

- Streamed with a progress bar into ``DEST/.downloads/NAME.part``; an interrupted download resumes with an
  HTTP Range request on the next run; the file gets its real name only once complete and verified.
- Verified against the published checksums (MD5, SHA-256 and size where known); a mismatch deletes that
  file only: archives that verified stay in ``DEST/.downloads`` for the next run, nothing is unpacked.
- Unpacked safely: no member may land outside DEST (absolute paths, ``..`` and symlinks are refused),
  and the total size and the compression ratio are capped against zip bombs.
- Idempotent: a marker file is written after a complete unpack; a second run does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from captioner import environment
from captioner.errors import DownloadError, OfflineError
from captioner.progress import progress_bar

FLICKR8K_BASE_URL = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/"
BASE_URL_ENV = "CAPTIONER_FLICKR8K_URL"
MARKER = ".flickr8k-complete.json"
CACHE = ".downloads"
CHUNK = 1 << 16  # 64 KiB: at most this much is lost (and fetched again) when a connection breaks
MAX_UNPACKED_BYTES = 4 * 1024**3  # 4 GiB: the real images unpack to about 1.1 GB
MAX_RATIO = 200  # a member may unpack to at most 200 times its compressed size (text is ~4, JPEG ~1)
RATIO_FLOOR = 1 << 20  # members smaller than 1 MiB are not ratio-checked (tiny files compress oddly)
SKIPPED_PREFIXES = ("__MACOSX/",)  # macOS resource forks inside the real Flickr8k_Dataset.zip


@dataclass(frozen=True)
class RemoteFile:
    """One archive to fetch and what it must match."""

    name: str  # file name on the server (appended to the base URL)
    unpack_to: str  # folder under DEST its members go to ("" for DEST itself)
    md5: str | None = None  # published MD5, checked when known
    sha256: str | None = None  # published SHA-256, checked when known
    size: int | None = None  # size in bytes, checked when known


# MD5s as published by two independent projects that fetch these exact release files (the R package
# torchvision's flickr8k_dataset and a CMake fetch script); no published SHA-256 or size was found.
FLICKR8K_FILES = (
    RemoteFile("Flickr8k_text.zip", "Flickr8k_text", md5="bf6c1abcb8e4a833b7f922104de18627"),
    RemoteFile("Flickr8k_Dataset.zip", "", md5="f18a1e2920de5bd84dae7cf08ec78978"),
)


def download_flickr8k(dest: str | os.PathLike = "data/flickr8k", base_url: str | None = None, *,
                      files: tuple[RemoteFile, ...] | None = None, retries: int = 3, timeout: float = 60,
                      show_progress: bool | None = None, max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
                      max_ratio: float = MAX_RATIO) -> Path:
    """Download and unpack Flickr8k into ``dest`` (a data set folder ``read_dataset`` reads); returns it.

    ``base_url`` (else ``$CAPTIONER_FLICKR8K_URL``, else the jbrownlee/Datasets release) is where the zips
    are; ``files`` replaces the table of archives and their checksums (for mirrors and tests).
    """
    dest = Path(dest).expanduser().resolve()
    if (dest / MARKER).is_file():
        return dest
    base = (base_url or environment.current().flickr8k_url or FLICKR8K_BASE_URL).rstrip("/") + "/"
    files = FLICKR8K_FILES if files is None else tuple(files)
    created = not dest.exists()
    cache = dest / CACHE
    cache.mkdir(parents=True, exist_ok=True)
    try:
        archives = [fetch(base + spec.name, cache / spec.name, spec, retries=retries, timeout=timeout,
                          show_progress=show_progress) for spec in files]
        for archive in archives:  # every archive is checked before any is unpacked
            inspect_archive(archive, max_unpacked_bytes=max_unpacked_bytes, max_ratio=max_ratio)
        for spec, archive in zip(files, archives):
            safe_unpack(archive, dest, spec.unpack_to, max_unpacked_bytes=max_unpacked_bytes, max_ratio=max_ratio)
    except (DownloadError, OfflineError):
        # the step that failed has deleted its own file (a bad checksum, a hostile archive); verified
        # archives and a resumable .part stay for the next run
        _tidy_after_failure(dest, cache, created)
        raise
    record = {"base_url": base, "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "files": [{"name": spec.name, "md5": spec.md5, "sha256": spec.sha256} for spec in files]}
    (dest / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(cache, ignore_errors=True)
    return dest


def _tidy_after_failure(dest: Path, cache: Path, created: bool) -> None:
    """Leave DEST as it was: drop an empty cache, and DEST itself if this run made it and it is empty."""
    if cache.is_dir() and not any(cache.iterdir()):
        cache.rmdir()
    if created and dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()


# ---------------------------------------------------------------- fetching

def fetch(url: str, target: Path, spec: RemoteFile, *, retries: int = 3, timeout: float = 60,
          show_progress: bool | None = None) -> Path:
    """Download ``url`` to ``target`` through ``target.part``, resuming a partial file; verify; return target."""
    import requests

    if target.is_file():
        verify(target, spec)
        return target
    part = target.with_name(target.name + ".part")
    attempt = 0
    while True:
        try:
            if _stream_into(requests, url, part, timeout, show_progress):
                break
            problem = "the connection closed before the whole file arrived"
        except requests.exceptions.ConnectionError as error:
            if not part.exists() and attempt >= retries:
                raise OfflineError(f"could not reach {url} ({type(error).__name__}); check the network, "
                                   f"or point --base-url (or ${BASE_URL_ENV}) at a mirror") from None
            problem = f"the connection broke ({type(error).__name__})"
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            problem = f"the connection broke ({type(error).__name__})"
        attempt += 1
        if attempt > retries:
            have = part.stat().st_size if part.exists() else 0
            error = DownloadError(f"download of {spec.name} interrupted after {have:,} bytes: {problem}; "
                                  "run the same command again to resume")
            error.resumable = have > 0  # the .part file stays, the next run continues it
            raise error
    try:
        verify(part, spec)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    return target


def _stream_into(requests, url: str, part: Path, timeout: float, show_progress: bool | None) -> bool:
    """One request: append to ``part`` from where it stops. True when the server sent the whole rest."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with requests.get(url, stream=True, headers=headers, timeout=timeout) as response:
        if response.status_code == 416 and offset:  # nothing left to send: the file is complete
            return True
        if response.status_code == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            mode = "ab"
        elif response.status_code == 200:
            offset, mode = 0, "wb"  # the server ignored the Range request: start again
        else:
            raise DownloadError(f"{url} answered HTTP {response.status_code}; check the address "
                                f"(--base-url or ${BASE_URL_ENV}) and try again")
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        bar = progress_bar(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                           desc=part.name.removesuffix(".part"), enabled=show_progress is not False)
        with bar, open(part, mode) as out:
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    return total is None or part.stat().st_size >= total


def file_digests(path: Path) -> dict[str, str]:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            md5.update(block)
            sha256.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def verify(path: Path, spec: RemoteFile) -> None:
    """Raise DownloadError (and delete the file) when it does not match the size or checksums in ``spec``."""
    size = path.stat().st_size
    problems = []
    if spec.size is not None and size != spec.size:
        problems.append(f"size {size:,} bytes, expected {spec.size:,}")
    if spec.md5 or spec.sha256:
        digests = file_digests(path)
        for kind in ("md5", "sha256"):
            expected = getattr(spec, kind)
            if expected and digests[kind] != expected.lower():
                problems.append(f"{kind} {digests[kind]}, expected {expected.lower()}")
    if problems:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{spec.name} does not match its published checksum ({'; '.join(problems)}); "
                            "the file was deleted: try again, or use another mirror with --base-url")


# ---------------------------------------------------------------- unpacking

def _member_path(name: str, archive: Path) -> PurePosixPath | None:
    """The safe relative path of a zip member, None for members to skip; DownloadError for hostile names."""
    if name.startswith(SKIPPED_PREFIXES) or PurePosixPath(name).name in (".DS_Store",) \
            or PurePosixPath(name).name.startswith("._"):
        return None
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        raise DownloadError(f"{archive.name} holds a member that would land outside the destination ({name!r}); "
                            "refused, nothing was unpacked")
    return path


def inspect_archive(archive: Path, *, max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
                    max_ratio: float = MAX_RATIO) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The members to unpack, after every safety check; DownloadError (and the archive deleted) if one fails."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members, total = [], 0
            for info in zf.infolist():
                path = _member_path(info.filename, archive)
                if path is None:
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DownloadError(f"{archive.name} holds a symbolic link ({info.filename!r}); refused, "
                                        "nothing was unpacked")
                total += info.file_size
                if total > max_unpacked_bytes:
                    raise DownloadError(f"{archive.name} would unpack to more than {max_unpacked_bytes:,} bytes; "
                                        "refused as a possible zip bomb, nothing was unpacked")
                if info.file_size > RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
                    raise DownloadError(f"{archive.name}: {info.filename!r} unpacks to {info.file_size:,} bytes "
                                        f"from {info.compress_size:,}; refused as a possible zip bomb")
                members.append((info, path))
            return members
    except zipfile.BadZipFile as error:
        archive.unlink(missing_ok=True)
        raise DownloadError(f"{archive.name} is not a valid zip file ({error}); it was deleted, "
                            "run the command again") from None
    except DownloadError:
        archive.unlink(missing_ok=True)
        raise


def safe_unpack(archive: Path, dest: Path, subfolder: str = "", *, max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
                max_ratio: float = MAX_RATIO) -> None:
    """Unpack ``archive`` into ``dest/subfolder`` all at once: members go to a staging folder inside ``dest``
    and move into place only when every member was unpacked and checked."""
    members = inspect_archive(archive, max_unpacked_bytes=max_unpacked_bytes, max_ratio=max_ratio)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
    try:
        with zipfile.ZipFile(archive) as zf:
            for info, path in members:
                _extract_member(zf, info, staging / path, archive)
        _move_into_place(staging, dest / subfolder if subfolder else dest, subfolder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path) -> None:
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as source, open(target, "wb") as out:
        while block := source.read(CHUNK):
            written += len(block)
            if written > info.file_size:  # the header lied about the size
                raise DownloadError(f"{archive.name}: {info.filename!r} is larger than its header says; refused")
            out.write(block)


def _move_into_place(staging: Path, target: Path, subfolder: str) -> None:
    """Move the staged members into ``target``; an archive whose only top folder is ``subfolder`` is not nested twice."""
    entries = list(staging.iterdir())
    if subfolder and len(entries) == 1 and entries[0].is_dir() and entries[0].name == subfolder:
        entries = list(entries[0].iterdir())
    target.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        elif destination.exists() or destination.is_symlink():
            destination.unlink()
        os.replace(entry, destination)
