"""Run ``captioner serve`` in a child process and wait until it is ready.

For whoever needs a real server beside them on 127.0.0.1: the test suite, the serving benchmark and the
screenshot script. The server's output goes to a log file, whose tail is in the error when it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from captioner import environment

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the captioner package


class ServerStartError(RuntimeError):
    """The server exited or did not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    log_path: Path  # the server's stdout and stderr

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def readyz(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as response:
            return json.load(response)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(models_dir: str | os.PathLike, *args: str, env: dict | None = None, cwd=None,
                 log_path: str | os.PathLike | None = None, timeout: float = 300.0) -> RunningServer:
    """Start ``captioner serve --models-dir MODELS_DIR ARGS`` on a free port; return once ``/readyz`` says ready.
    A ``PYTHONPATH`` in ``env`` comes before this source tree's."""
    port = free_port()
    log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="captioner-serve-", suffix=".log")[1])
    env = dict(env or {})
    python_path = os.pathsep.join(filter(None, [env.pop("PYTHONPATH", None), str(SOURCE_ROOT),
                                                environment.variables().get("PYTHONPATH")]))
    full_env = environment.child_environment(PYTHONPATH=python_path, **env)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "captioner", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--models-dir", str(models_dir), *args],
            cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_ready(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerStartError(f"captioner serve exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            if server.readyz().get("status") == "ready":
                return
        except (OSError, ValueError):  # not listening yet, or 503 while the models load
            pass
        time.sleep(0.3)
    raise ServerStartError(f"captioner serve was not ready after {timeout:.0f} s:\n{server.log_tail()}")
