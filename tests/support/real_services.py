"""Real local services for the access, limit and fault tests: a private PostgreSQL that a test may stop
and start, a Redis server, a tiny filesystem that fills up, and a record of every file a server process
opens for writing. Each one skips the test with the reason when this machine cannot provide it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from captioner.web.launch import free_port

POSTGRES_BIN = Path("/usr/lib/postgresql")


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary folder, on its own port, owned by this test only:
    stopping it affects nobody else's database."""

    def __init__(self):
        versions = sorted(POSTGRES_BIN.glob("*/bin/pg_ctl")) if POSTGRES_BIN.is_dir() else []
        if not versions or os.geteuid() != 0 or shutil.which("runuser") is None:
            pytest.skip("a private PostgreSQL needs Debian's postgresql package and root (to run it as 'postgres')")
        self.bin = versions[-1].parent
        # Not under pytest's folders: those are closed to other users, and the server runs as 'postgres'.
        folder = Path(tempfile.mkdtemp(prefix="captioner-test-postgres-"))
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "postgres", "postgres")
        self._as_postgres(self.bin / "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def _as_postgres(self, *command) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log", "-w", "-o",
                          f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")


@contextmanager
def private_postgres():
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(server.folder, ignore_errors=True)


@contextmanager
def redis_server():
    """redis-server on a free port, in memory only; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def mount_tiny_filesystem(folder: Path, size: str = "4m") -> str | None:
    """Mount a tmpfs of ``size`` on ``folder`` (writing past it fails with ENOSPC, as on a full disk);
    None when done, else why it could not be (it needs root with mount rights)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"cannot mount a small filesystem here: {done.stderr.strip()}"


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


WRITE_RECORDER = '''
"""Loaded by the server under test (sitecustomize): records every file the process opens for writing."""
import os, sys

_LOG = os.environ.get("CAPTIONER_TEST_WRITES_LOG")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND


def _record(event, args):
    if event != "open" or not _LOG:
        return
    path, mode, flags = args
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & _WRITE_FLAGS)
    if writing and path is not None and str(path) != _LOG:
        with open(_LOG, "a") as log:  # (this open is recorded as _LOG and skipped)
            log.write(f"{path}\\n")


sys.addaudithook(_record)
'''


def write_recorder(folder: Path) -> Path:
    """A folder with a sitecustomize.py that records, into $CAPTIONER_TEST_WRITES_LOG, every path the
    process opens for writing (Python's audit hook sees every open, tempfile's included)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(WRITE_RECORDER)
    return folder
