"""Run every benchmark and write benchmarks/results.json and docs/benchmarks.md.

Each ``benchmarks/bench_*.py`` module has ``run(quick: bool) -> list[dict]``; a dict is one figure:
``{"name", "ours", "baseline", "unit", "ratio", "higher_is_better", "note"?}`` where ``ratio`` says how
many times better ours is than the straightforward way, both measured in this same run (above 1 means
better). ``BENCH_QUICK=1`` makes each benchmark short; ``BENCH_ONLY=name[,name...]`` runs the modules named
(``serving`` is ``bench_serving.py``; a name that is no module's runs every module whose name holds it), and
keeps the other modules' latest figures.

Each module runs in a process of its own. In one shared process the modules disturbed each other's figures:
TensorFlow's thread pools, started by the Keras benchmarks, stayed alive beside PyTorch's, and a PyTorch
decoder step measured after them took three times as long as in a fresh process (docs/benchmarks.md). A
module that fails is reported, its previous figures are kept, and the run exits non-zero once every other
module has run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
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


def cpu_class() -> str:
    """The CPU and its widest float instructions ("AMD EPYC, AVX-512 with BF16"): figures compare only within
    one class, so each module's rows say which one measured them."""
    flags, name = set(), platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    for flag, words in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 with BF16"), ("avx512f", "AVX-512"),
                        ("avx2", "AVX2")):
        if flag in flags:
            return f"{name}, {words}"
    return name


def ratio(ours: float, baseline: float, higher_is_better: bool) -> float:
    if higher_is_better:
        return ours / baseline if baseline else float("inf")
    return baseline / ours if ours else float("inf")


def figure(name: str, ours: float, baseline: float, unit: str, higher_is_better: bool, note: str = "") -> dict:
    """One result row, its ratio computed the same way everywhere."""
    return {"name": name, "ours": round(ours, 4), "baseline": round(baseline, 4), "unit": unit,
            "ratio": round(ratio(ours, baseline, higher_is_better), 2), "higher_is_better": higher_is_better,
            "note": note}


def run_alone(run_module) -> None:
    """``python benchmarks/bench_NAME.py``: that module's rows printed, the results files left as they are
    (``BENCH_ONLY=NAME make bench`` records them)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for row in run_module(bool(os.environ.get("BENCH_QUICK"))):
        print(row)


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measured_at(rows: list[dict]) -> dict[str, str]:
    """module -> when its rows were measured (rows written before modules were recorded: "earlier")."""
    return {row.get("module", "other modules"): row.get("measured", "earlier, one shared process") for row in rows}


def write_markdown(rows: list[dict], quick: bool, path: Path) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `benchmarks/run.py`"
        f"{' (this run: BENCH_QUICK=1)' if quick else ''}.",
        f"Machine: {machine()}.",
        "",
        "Rows of modules not re-run then keep their latest figures. When each module was last measured: "
        + "; ".join(f"`{module}` {when}" for module, when in measured_at(rows).items()) + ".",
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


def run_module(path: Path, quick: bool) -> list[dict] | None:
    """The figures of one benchmark module, run in a fresh Python process; None when it failed."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "rows.json"
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--module", str(path), str(out)],
                              env={**os.environ, "BENCH_QUICK": "1" if quick else ""})
        if done.returncode != 0 or not out.is_file():
            return None
        measured = (datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") + f" on {cpu_class()}"
                    + (", BENCH_QUICK=1" if quick else ""))
        return [{**row, "module": path.stem, "measured": measured} for row in json.loads(out.read_text())]


def module_main(path: Path, out: Path) -> int:
    """Run one module here and write its rows to ``out`` (the child side of :func:`run_module`)."""
    rows = []
    for row in load_module(path).run(bool(os.environ.get("BENCH_QUICK"))):
        rows.append(row)
        print(f"   {row['name']}: ours {row['ours']:g} vs baseline {row['baseline']:g} {row['unit']} "
              f"-> {row['ratio']:g}x", flush=True)
    out.write_text(json.dumps(rows), encoding="utf-8")
    return 0


def selected(stem: str, names: list[str], stems: set[str]) -> bool:
    """Whether BENCH_ONLY's ``names`` pick the module ``stem``: by its name, with or without ``bench_``, or,
    for a name that is no module's, by a part of it."""
    for name in names:
        exact = name if name.startswith("bench_") else f"bench_{name}"
        if stem == exact or (exact not in stems and name in stem):
            return True
    return False


def main() -> int:
    quick = bool(os.environ.get("BENCH_QUICK"))
    only = [name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()]
    results = HERE / "results.json"
    previous = json.loads(results.read_text()) if results.is_file() else []
    fresh: dict[str, list[dict]] = {}
    failed = []
    modules = sorted(HERE.glob("bench_*.py"))
    for path in modules:
        if only and not selected(path.stem, only, {module.stem for module in modules}):
            continue
        started = time.perf_counter()
        print(f"== {path.stem}", flush=True)
        rows = run_module(path, quick)
        if rows is None:
            failed.append(path.stem)
            print(f"   {path.stem} FAILED; its previous figures are kept", flush=True)
        else:
            fresh[path.stem] = rows
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    names = {row["name"] for rows in fresh.values() for row in rows}
    kept = [row for row in previous if row.get("module") not in fresh and row["name"] not in names]
    rows = kept + [row for stem in sorted(fresh) for row in fresh[stem]]
    results.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    write_markdown(rows, quick, ROOT / "docs" / "benchmarks.md")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--module"]:
        raise SystemExit(module_main(Path(sys.argv[2]), Path(sys.argv[3])))
    raise SystemExit(main())
