"""The ``captioner`` command in tests: in this process (``run_main``, the usual way) or in a fresh one
(``run_cli``, only where a separate process is the point: start-up, environment, signals)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from captioner import environment

from support import ROOT


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_main(*args) -> CliResult:
    """``captioner ARGS`` through ``captioner.cli.main`` in this process, its output captured."""
    from captioner.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code if isinstance(exit.code, int) else 1
    return CliResult(code, stdout.getvalue(), stderr.getvalue())


def run_cli(*args, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> CliResult:
    """``python -m captioner ARGS`` in a fresh process, as a user would run it (imports everything again)."""
    python_path = str(ROOT / "src") + ":" + environment.variables().get("PYTHONPATH", "")
    full_env = environment.child_environment(PYTHONPATH=python_path, **(env or {}))
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
