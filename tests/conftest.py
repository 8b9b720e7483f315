"""Fixtures every test module may use: the command line as a subprocess, the shapes data set, the
real Flickr8k text from ../shared/data when it is present. Nothing here touches the network."""

from __future__ import annotations

import os
import subprocess
import tempfile
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CAPTIONER_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Transformers captioners compute in float32 in tests whatever the CPU, so results repeat on every machine.
os.environ.setdefault("CAPTIONER_PRECISION", "float32")
# Apps made by tests keep their caption history in a throw-away SQLite file, never in a real database.
_TEST_INSTANCE = tempfile.mkdtemp(prefix="captioner-test-instance-")
os.environ["DATABASE_URL"] = f"sqlite:///{_TEST_INSTANCE}/captioner.db"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> CliResult:
    """Run ``python -m captioner ARGS`` in a fresh process, as a user would."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full_env.update(env or {})
    done = subprocess.run([sys.executable, "-m", "captioner", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return CliResult(done.returncode, done.stdout, done.stderr)


def assert_clean_failure(result: CliResult, *fragments: str) -> None:
    """A failed command: non-zero exit, exactly one line on stderr naming the problem, no traceback."""
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def flickr8k_text() -> Path:
    folder = SHARED_DATA / "flickr8k_text"
    if not (folder / "Flickr8k.token.txt").is_file():
        pytest.skip(f"the real Flickr8k text is not at {folder}")
    return folder


@pytest.fixture(scope="session")
def phone_photo() -> Path:
    path = SHARED_DATA / "photos" / "phone_photo_3264x2448.jpg"
    if not path.is_file():
        pytest.skip(f"the reference phone photo is not at {path}")
    return path


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory) -> Path:
    """A small shapes data set (CSV layout), shared by the whole session; treat it as read-only."""
    from captioner.data.shapes import write_shapes_dataset

    return write_shapes_dataset(tmp_path_factory.mktemp("shapes") / "shapes", images=60, seed=7)
