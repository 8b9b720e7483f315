"""METEOR 1.5 through the jar pycocoevalcap ships, with the guards its own wrapper lacks.

pycocoevalcap's ``Meteor`` talks to ``java -jar meteor-1.5.jar - - -stdio -l en -norm`` line by line and
can hang for good: it never reads the process's stderr (a full pipe blocks Java), a caption with a
newline or ``|||`` in it shifts every following answer, a dead JVM leaves ``readline`` waiting, and an
exception leaves its lock held. Here the same command and protocol run with stderr discarded, captions
made single-line and free of the field separator, stdout read by a thread with a deadline on every
answer, and the process killed and restarted on any failure. Starting the JVM and loading the
paraphrase table takes seconds, so one process is kept per Python process and shut down at exit.
"""

from __future__ import annotations

import atexit
import os
import queue
import subprocess
import threading
import time

from captioner.environment import child_environment
from captioner.evaluation.tokenize import one_line, pycocoevalcap_dir

START_TIMEOUT_S = 180.0  # first answer: JVM start plus the paraphrase table (10-20 s on a busy CPU)
ANSWER_TIMEOUT_S = 30.0  # any later answer; METEOR answers a line in milliseconds
MEMORY = "-Xmx2G"  # the heap pycocoevalcap gives METEOR


class MeteorError(RuntimeError):
    """METEOR could not be run or stopped answering."""


def _clean(text: str) -> str:
    return one_line(text.replace("|||", " "))


class MeteorProcess:
    """One running METEOR scorer."""

    def __init__(self) -> None:
        folder = pycocoevalcap_dir() / "meteor"
        jar = folder / "meteor-1.5.jar"
        if not jar.is_file():
            raise MeteorError(f"the METEOR jar is missing from pycocoevalcap ({jar})")
        command = ["java", "-jar", MEMORY, str(jar), "-", "-", "-stdio", "-l", "en", "-norm"]
        env = child_environment(LC_ALL="C.UTF-8", JAVA_TOOL_OPTIONS="")
        try:
            self.process = subprocess.Popen(command, cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, env=env)
        except OSError as error:
            raise MeteorError(f"could not start Java for METEOR ({error})") from None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.answered_once = False
        threading.Thread(target=self._read, name="meteor-stdout", daemon=True).start()

    def _read(self) -> None:
        for raw in self.process.stdout:
            self.lines.put(raw.decode("utf-8", "replace").strip())
        self.lines.put(None)  # end of output: the process is gone

    def alive(self) -> bool:
        return self.process.poll() is None

    def _answer(self, deadline: float) -> str:
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise MeteorError("METEOR stopped answering") from None
        if line is None:
            raise MeteorError(f"METEOR exited unexpectedly (exit status {self.process.poll()})")
        self.answered_once = True
        return line

    def _send(self, lines: list[str]) -> None:
        try:
            self.process.stdin.write(("\n".join(lines) + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise MeteorError(f"METEOR closed its input ({error})") from None

    def _send_quietly(self, lines: list[str]) -> None:
        try:
            self._send(lines)
        except MeteorError:
            pass  # the reading side notices: METEOR exited or stopped answering

    def score(self, hypotheses: list[str], references: list[list[str]]) -> tuple[float, list[float]]:
        """Corpus METEOR and one score per hypothesis, exactly as pycocoevalcap computes them."""
        if not hypotheses:
            raise ValueError("no captions to score")
        first = START_TIMEOUT_S if not self.answered_once else ANSWER_TIMEOUT_S
        # Statistics for every pair first (the reader thread drains stdout while we write, so the pipes
        # never fill up), then one EVAL line that turns all of them into scores.
        writer = threading.Thread(target=self._send_quietly, name="meteor-stdin", daemon=True, args=([
            " ||| ".join(("SCORE", " ||| ".join(_clean(r) for r in refs), _clean(hyp)))
            for hyp, refs in zip(hypotheses, references)
        ],))
        writer.start()
        deadline = time.monotonic() + first + ANSWER_TIMEOUT_S * (1 + len(hypotheses) / 1000)
        stats = [self._answer(deadline) for _ in hypotheses]
        writer.join(timeout=ANSWER_TIMEOUT_S)
        self._send(["EVAL ||| " + " ||| ".join(stats)])
        deadline = time.monotonic() + ANSWER_TIMEOUT_S * (1 + len(hypotheses) / 1000)
        try:
            per_item = [float(self._answer(deadline)) for _ in hypotheses]
            corpus = float(self._answer(deadline))
        except ValueError:
            raise MeteorError("METEOR answered something that is not a score") from None
        return corpus, per_item

    def close(self) -> None:
        """Ask the process to stop (close its input), kill it if it does not within a few seconds."""
        try:
            if self.process.stdin and not self.process.stdin.closed:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


_shared: MeteorProcess | None = None
_shared_lock = threading.Lock()


def meteor_score(hypotheses: list[str], references: list[list[str]]) -> tuple[float, list[float]]:
    """Score with the shared METEOR process (started on first use, restarted if it died).

    Raises :class:`MeteorError` when METEOR cannot run or hangs; the process is then killed, so the
    next call starts afresh."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive():
            _shared = MeteorProcess()
        try:
            return _shared.score(hypotheses, references)
        except BaseException:
            broken, _shared = _shared, None
            broken.process.kill()
            broken.close()
            raise


@atexit.register
def shutdown() -> None:
    """Stop the shared METEOR process (runs at interpreter exit)."""
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.close()
            _shared = None
