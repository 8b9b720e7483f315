"""Readiness across gunicorn workers: one file per worker that has its models, in a folder the master made.

A worker creates the app (and so loads its models) before it accepts its first connection, then marks
itself ready here; the master forgets a worker when it exits. ``/readyz`` answers ready only when as many
live workers are ready as the server runs, whichever worker it reaches.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class WorkerReadiness:
    def __init__(self, folder: str | os.PathLike, expected: int):
        self.folder = Path(folder)  # holds one empty file per ready worker, named by its process id
        self.expected = expected  # workers the server runs

    def mark_ready(self, pid: int) -> None:
        (self.folder / str(pid)).touch()

    def forget(self, pid: int) -> None:
        (self.folder / str(pid)).unlink(missing_ok=True)

    def ready_count(self) -> int:
        """Ready workers that are still alive (a file left by a killed worker does not count)."""
        return sum(1 for path in self.folder.iterdir() if path.name.isdigit() and _alive(int(path.name)))

    def snapshot(self) -> dict:
        return {"expected": self.expected, "ready": self.ready_count()}

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
