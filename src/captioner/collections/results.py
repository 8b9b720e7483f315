"""The results file of a collection run: one row per image, appended as produced, read back to resume.

Three formats, chosen by the name given to ``--out``:
- ``.jsonl`` (or ``.ndjson``): one JSON object per line;
- ``.csv``: a header, then one record per image (decoding, alternatives and translations as JSON text);
- ``.parquet``: a folder of part files, one per appended batch (columns as in CSV).

No row is ever torn or duplicated. JSONL and CSV rows are appended with one write per batch and flushed
to disk (fsync) before the run goes on; when a run was killed in the middle of a write, the next run cuts
the file back to its last complete row before appending. A Parquet part is written beside the folder's
other parts and renamed into place only when complete. One run at a time may write a results file (a
lock says so); a run skips every image whose (content sha256, model, decoding settings) is already there.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from captioner.errors import DataError
from captioner.files import atomic_path, flush_to_disk

FIELDS = ("path", "sha256", "width", "height", "model", "decoding", "caption", "score", "alternatives",
          "translations", "error", "keywords", "clip_score", "review")
# CSV files written before later columns joined start with a shorter header (the first 11 columns are the
# original one, then keywords): they are read, and appended to in their own columns.
FIRST_FIELDS = 11
EARLIER_FIELDS = FIELDS[:FIRST_FIELDS]
JSON_FIELDS = ("decoding", "alternatives", "translations", "keywords")  # stored as JSON text in CSV and Parquet
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class ResultRow:
    """What a run found out about one image; ``error`` is set (and ``caption`` None) when it failed."""

    path: str  # where the image was found (the first path, when the same content appears twice)
    sha256: str | None  # hex digest of the file's bytes: its identity across renames; None when unreadable
    width: int | None  # of the image as it stands upright, in pixels; None when unreadable
    height: int | None
    model: str  # name of the model that captioned it
    decoding: dict  # Decoding.to_dict() of the run
    caption: str | None = None  # the best caption
    score: float | None = None  # its total log-probability under the model
    alternatives: list = field(default_factory=list)  # [{"text", "log_prob"}], best first
    translations: dict = field(default_factory=dict)  # {"de": "...", "ar": "..."}
    error: str | None = None  # why the image could not be captioned
    keywords: list = field(default_factory=list)  # the "keywords" style: lower-case, de-duplicated; else empty
    clip_score: float | None = None  # CLIPScore of the caption (--score clip), None when not asked for
    review: bool = False  # below --min-score: a person should look at it; no metadata is written for it

    @property
    def publishable(self) -> bool:
        """Whether the caption may go into the photo's metadata: there is one and nobody needs to review it."""
        return bool(self.caption) and not self.review

    @property
    def key(self) -> tuple[str, str]:
        return result_key(self.sha256 or f"path:{self.path}", self.model, self.decoding)

    def to_dict(self) -> dict:
        return asdict(self)


def recorded_decoding(captioner, decoding) -> dict:
    """What a row records of how its caption was made, and so what its resume key holds: the decoding, and the
    captioner's own choices where it has them (``run_settings()``: a tagger's thresholds, a template, a language),
    so a run with other choices captions again instead of reusing rows made otherwise."""
    from captioner.models.tagged import run_settings

    return {**decoding.to_dict(), **run_settings(captioner)}


def result_key(sha256: str, model: str, decoding: dict) -> tuple[str, str]:
    """What makes two rows the same result: the content (its sha256), and the model with its decoding."""
    return sha256, json.dumps({"model": model, "decoding": decoding}, sort_keys=True)


def results_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"cannot tell the results format from {os.fspath(path)!r}: name the file "
                        "results.jsonl, results.csv or results.parquet")
    return FORMATS[suffix]


def open_results(path: str | os.PathLike) -> "ResultsFile":
    """The results file at ``path`` (made when missing), locked for this run, its torn tail cut off."""
    kind = results_format(path)
    return {"jsonl": JsonlResults, "csv": CsvResults, "parquet": ParquetResults}[kind](Path(path))


def read_rows(path: str | os.PathLike) -> list[ResultRow]:
    """Every complete row of a results file, without locking or repairing it (for reports and tests)."""
    path = Path(path)
    if not path.exists():
        return []
    kind = results_format(path)
    if kind == "parquet":
        return _read_parquet_rows(path)
    data = path.read_bytes()
    return _parse_rows(data[:_complete_length(data, kind)], kind, path)


class ResultsFile:
    """Rows already in the file (``done``), and ``append`` for new ones; close (or ``with``) to unlock."""

    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self._lock_path(), path)
        try:
            self.rows = self._open()
        except BaseException:
            self.close()
            raise
        self.done = {row.key for row in self.rows}

    def _lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def _open(self) -> list[ResultRow]:
        raise NotImplementedError

    def append(self, rows: Iterable[ResultRow]) -> None:
        rows = list(rows)
        if rows:
            self._write(rows)
            self.done.update(row.key for row in rows)

    def _write(self, rows: list[ResultRow]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _AppendedResults(ResultsFile):
    """JSONL and CSV: a text file appended to, its last incomplete row cut off when it is opened."""

    kind = ""

    def _open(self) -> list[ResultRow]:
        data = self.path.read_bytes() if self.path.exists() else b""
        complete = _complete_length(data, self.kind)
        if complete < len(data):  # a write that a kill or power cut interrupted
            with open(self.path, "r+b") as handle:
                handle.truncate(complete)
                os.fsync(handle.fileno())
        return _parse_rows(data[:complete], self.kind, self.path)

    def _write(self, rows: list[ResultRow]) -> None:
        text = self._encode(rows, header=not self.path.exists() or self.path.stat().st_size == 0)
        with open(self.path, "ab") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())

    def _encode(self, rows: list[ResultRow], header: bool) -> str:
        raise NotImplementedError


class JsonlResults(_AppendedResults):
    kind = "jsonl"

    def _encode(self, rows: list[ResultRow], header: bool) -> str:
        return "".join(json.dumps(row.to_dict(), ensure_ascii=False) + "\n" for row in rows)


class CsvResults(_AppendedResults):
    kind = "csv"

    def _encode(self, rows: list[ResultRow], header: bool) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = FIELDS if header else _csv_columns(self.path)
        if header:
            writer.writerow(columns)
        for row in rows:
            writer.writerow(_flat(row)[name] for name in columns)
        return buffer.getvalue()


class ParquetResults(ResultsFile):
    """A folder of ``part-NNNNNN.parquet`` files; each append adds one, complete or not at all."""

    def _lock_path(self) -> Path:
        return self.path / ".lock"

    def __init__(self, path: Path):
        if path.exists() and not path.is_dir():
            raise DataError(f"{path} is a file; a Parquet results set is a folder of part files: "
                            "give a new name ending in .parquet")
        path.mkdir(parents=True, exist_ok=True)
        super().__init__(path)

    def _open(self) -> list[ResultRow]:
        return _read_parquet_rows(self.path)

    def _write(self, rows: list[ResultRow]) -> None:
        pa, pq = _pyarrow()
        parts = sorted(self.path.glob("part-*.parquet"))
        number = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        table = pa.Table.from_pylist([_flat(row) for row in rows], schema=_parquet_schema(pa))
        with atomic_path(self.path / f"part-{number:06d}.parquet") as staging:
            pq.write_table(table, staging)
            flush_to_disk(staging)


def _flat(row: ResultRow) -> dict:
    """The row with its structured fields as JSON text (CSV and Parquet cells)."""
    flat = row.to_dict()
    for name in JSON_FIELDS:
        flat[name] = json.dumps(flat[name], ensure_ascii=False, sort_keys=name == "decoding")
    return flat


def _from_flat(values: dict, where: str) -> ResultRow:
    try:
        data = {name: values.get(name) for name in FIELDS}
        for name in JSON_FIELDS:
            if isinstance(data[name], str):
                data[name] = json.loads(data[name]) if data[name] else ({} if name in ("decoding", "translations")
                                                                        else [])
            elif data[name] is None and name == "keywords":  # a row written before the keywords column
                data[name] = []
        for name in ("width", "height"):
            data[name] = int(data[name]) if data[name] not in (None, "") else None
        for name in ("score", "clip_score"):
            data[name] = float(data[name]) if data[name] not in (None, "") else None
        data["review"] = data["review"] in (True, "True", "true", "1")
        for name in ("sha256", "caption", "error"):
            data[name] = data[name] or None
        if not data["path"] or not data["model"] or not isinstance(data["decoding"], dict):
            raise ValueError("path, model and decoding are required")
        return ResultRow(**data)
    except (ValueError, TypeError) as error:
        raise DataError(f"{where} is not a captioner result row ({error}); move the file aside or fix it") from None


def _csv_columns(path: Path) -> tuple[str, ...]:
    """The columns of an existing CSV results file (its header): older files lack the later columns."""
    with open(path, newline="", encoding="utf-8") as handle:
        return _checked_header(next(csv.reader(handle), ()), path)


def _complete_length(data: bytes, kind: str) -> int:
    """Bytes up to the end of the last complete row: for JSONL the last newline (JSON text escapes its
    newlines), for CSV the last newline outside a quoted field."""
    if kind == "jsonl":
        return data.rfind(b"\n") + 1
    end, quoted = 0, False
    for index, byte in enumerate(data):
        if byte == 0x22:  # '"': CSV doubles quotes inside fields, so parity tells inside from outside
            quoted = not quoted
        elif byte == 0x0A and not quoted:
            end = index + 1
    return end


def _parse_rows(data: bytes, kind: str, path: Path) -> list[ResultRow]:
    text = data.decode("utf-8", errors="strict") if data else ""
    if kind == "jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    values = json.loads(line)
                except ValueError:
                    raise DataError(f"line {number} of {path} is not JSON; move the file aside or fix it") from None
                rows.append(_from_flat(values, f"line {number} of {path}"))
        return rows
    records = list(csv.reader(io.StringIO(text)))
    if not records:
        return []
    columns = _checked_header(records[0], path)
    return [_from_flat(dict(zip(columns, record)), f"record {number} of {path}")
            for number, record in enumerate(records[1:], 2) if record]


def _checked_header(header, path: Path) -> tuple[str, ...]:
    """A CSV results header: the columns, or their first ones (a file written before later columns joined)."""
    header = tuple(header)
    if len(header) < FIRST_FIELDS or header != FIELDS[:len(header)]:
        raise DataError(f"{path} does not start with the captioner results header ({','.join(FIELDS)}); "
                        "give another --out file")
    return header


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("Parquet results need pyarrow: pip install 'captioner[ray]' (or pyarrow), "
                        "or write results.jsonl or results.csv") from None
    return pa, pq


def _parquet_schema(pa):
    text, number = pa.string(), pa.int64()
    return pa.schema([("path", text), ("sha256", text), ("width", number), ("height", number), ("model", text),
                      ("decoding", text), ("caption", text), ("score", pa.float64()), ("alternatives", text),
                      ("translations", text), ("error", text), ("keywords", text), ("clip_score", pa.float64()),
                      ("review", pa.bool_())])


def _read_parquet_rows(folder: Path) -> list[ResultRow]:
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return []
    _, pq = _pyarrow()
    rows = []
    for part in parts:
        for number, values in enumerate(pq.read_table(part).to_pylist(), 1):
            rows.append(_from_flat(values, f"row {number} of {part}"))
    return rows


def _lock(path: Path, results: Path):
    """An exclusive lock on ``path`` held until the returned handle closes; another run holding it is an error."""
    handle = open(path, "a")
    try:
        import fcntl
    except ImportError:  # Windows: no lock, one run at a time is up to the user
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataError(f"another captioner run is writing {results}; "
                        "wait for it to finish or write to another --out file") from None
    return handle
