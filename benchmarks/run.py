"""Run every benchmark and write benchmarks/results.json and docs/benchmarks.md.

Each ``benchmarks/bench_*.py`` module has ``run(quick: bool) -> list[dict]``; a dict is one figure:
``{"name", "ours", "baseline", "unit", "ratio", "higher_is_better", "note"?}`` where ``ratio`` says how
many times better ours is than the straightforward way, both measured in this same run (above 1 means
better). ``BENCH_QUICK=1`` makes each benchmark short; ``BENCH_ONLY=name`` runs one module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))


def machine() -> str:
    cores = os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {cores} cores, {memory:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def ratio(ours: float, baseline: float, higher_is_better: bool) -> float:
    if higher_is_better:
        return ours / baseline if baseline else float("inf")
    return baseline / ours if ours else float("inf")


def figure(name: str, ours: float, baseline: float, unit: str, higher_is_better: bool, note: str = "") -> dict:
    """One result row, its ratio computed the same way everywhere."""
    return {"name": name, "ours": round(ours, 4), "baseline": round(baseline, 4), "unit": unit,
            "ratio": round(ratio(ours, baseline, higher_is_better), 2), "higher_is_better": higher_is_better,
            "note": note}


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_markdown(rows: list[dict], quick: bool, path: Path) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Latest run: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}{' (BENCH_QUICK=1)' if quick else ''}.",
        f"Machine: {machine()}.",
        "",
        "Every figure compares our way with the straightforward way, both measured in the same run on the",
        "same machine. *Ratio* is how many times better ours is (above 1 is better). Regenerate with `make bench`.",
        "",
        "| benchmark | ours | baseline | unit | ratio | note |",
        "| --- | ---: | ---: | --- | ---: | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {row['ours']:g} | {row['baseline']:g} | {row['unit']} | "
                     f"{row['ratio']:g}x | {row.get('note', '')} |")
    notes = HERE / "notes.md"  # what the figures mean and what limits them, kept beside the code
    if notes.is_file():
        lines += ["", notes.read_text(encoding="utf-8").rstrip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    quick = bool(os.environ.get("BENCH_QUICK"))
    only = os.environ.get("BENCH_ONLY")
    rows: list[dict] = []
    for path in sorted(HERE.glob("bench_*.py")):
        if only and only not in path.stem:
            continue
        started = time.perf_counter()
        print(f"== {path.stem}", flush=True)
        for row in load_module(path).run(quick):
            rows.append(row)
            print(f"   {row['name']}: ours {row['ours']:g} vs baseline {row['baseline']:g} {row['unit']} "
                  f"-> {row['ratio']:g}x", flush=True)
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    results = HERE / "results.json"
    if only and results.is_file():  # keep the other modules' latest figures
        names = {r["name"] for r in rows}
        rows = [r for r in json.loads(results.read_text()) if r["name"] not in names] + rows
    results.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    write_markdown(rows, quick, ROOT / "docs" / "benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
