"""Running the exiftool program: reading every tag of photos and sidecars, and writing tags all or nothing.

exiftool (Phil Harvey's Perl program, Debian ``libimage-exiftool-perl``) runs as a separate process; nothing
of it is imported. Every call loads the configuration shipped with captioner (``exiftool_config/``), which
declares captioner's own XMP namespace (:mod:`captioner.collections.provenance`). Tags go in as JSON on
standard input (``-j=-``), so a caption may hold any character (commas, braces, newlines, a leading dash)
without escaping. A write goes to a new file beside the target, which replaces it only when complete.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from captioner.errors import CaptionerError
from captioner.files import atomic_path, flush_to_disk

TIMEOUT_S = 60  # longest one exiftool call may take
PROGRAM = "exiftool"


class MetadataError(CaptionerError):
    """exiftool is missing, or could not read or write a photo's metadata."""


def config_path() -> Path:
    """The exiftool configuration that declares captioner's XMP namespace (package data)."""
    return Path(str(resources.files("captioner.collections") / "exiftool_config" / "captioner.config"))


def check_exiftool(program: str = PROGRAM) -> None:
    """Fail early, with how to fix it, when exiftool is not installed."""
    if shutil.which(program) is None:
        raise MetadataError("this needs the exiftool program; install it (Debian/Ubuntu: apt-get install "
                            "libimage-exiftool-perl, macOS: brew install exiftool)")


def run_exiftool(arguments: list[str], *, data: bytes | None = None, program: str = PROGRAM,
                 what: str = "") -> bytes:
    """exiftool's standard output for ``arguments`` (``data`` on its standard input); MetadataError when
    it fails or takes longer than TIMEOUT_S."""
    command = [program, "-config", str(config_path()), *arguments]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise MetadataError(f"exiftool took more than {TIMEOUT_S} s on {what}") from None
    except FileNotFoundError:
        check_exiftool(program)
        raise
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MetadataError(f"exiftool could not read or write {what}: {message[0] if message else 'no output'}")
    return done.stdout


def read_tags(paths: list[Path], program: str = PROGRAM) -> dict[Path, dict]:
    """Every tag of each existing file in ``paths``, as ``exiftool -j -G1 -a -struct`` names them."""
    present = [path for path in paths if path.is_file()]
    if not present:
        return {}
    output = run_exiftool(["-j", "-G1", "-a", "-struct", "-q", "-q", "-m", "-charset", "filename=UTF8", "--",
                           *map(str, present)], program=program, what=", ".join(map(str, present)))
    found = json.loads(output.decode("utf-8", "replace") or "[]")
    return {path: tags for path, tags in zip(present, found)}


def write_tags(target: Path, tags: dict, *, source: Path | None, program: str = PROGRAM) -> Path:
    """Write ``tags`` ({"GROUP:Tag": value}) into a copy of ``source`` (None: a new XMP sidecar) that replaces
    ``target`` when complete. Pixels and every other tag are kept as they are."""
    document = [{"SourceFile": "*", **tags}]
    with atomic_path(target) as staging:
        arguments = ["-q", "-q", "-m", "-P", "-charset", "iptc=UTF8", "-j=-", "-o", str(staging)]
        run_exiftool(arguments + (["--", str(source)] if source else []), program=program, what=str(target),
                     data=json.dumps(document, ensure_ascii=False).encode("utf-8"))
        if not staging.exists():
            raise MetadataError(f"exiftool wrote nothing for {target}")
        if source is not None:
            shutil.copymode(source, staging)
        flush_to_disk(staging)
    return target
