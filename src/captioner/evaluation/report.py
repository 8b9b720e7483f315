"""Report files for one or several evaluated models on one split.

```
REPORT_DIR/
  metrics.json       every model's metrics, diversity, decoding, counts, timing and notes
  predictions.jsonl  one line per model and image: {"model", "image", "caption", "references"}
  report.md          score table (x100, as papers print them), diversity, best and worst examples
  results.png        test images with each model's caption and one reference caption
```
Every file is written through a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from captioner.evaluation.figure import results_figure, save_figure
from captioner.evaluation.metrics import METRIC_KEYS, OPTIONAL_KEYS
from captioner.files import write_json_atomic, write_text_atomic

EXAMPLES = 3  # best and worst captions shown per model
RANK_BY = "CIDEr"  # per-image metric that picks the best and worst examples


def metric_columns(results) -> list[str]:
    """The metric keys any result has, in the usual order."""
    return [k for k in (*METRIC_KEYS, *OPTIONAL_KEYS) if any(k in r.scores for r in results)]


def x100(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def score_rows(results) -> tuple[list[str], list[list[str]]]:
    """Header and one row per model: name, images, share of distinct captions, every metric x100."""
    columns = metric_columns(results)
    rows = [[r.model, str(len(r.items)), f"{r.diversity['distinct_share']:.0%}", *(x100(r.scores.get(k)) for k in columns)]
            for r in results]
    return ["model", "images", "distinct", *columns], rows


def text_table(results) -> str:
    """The score table for a terminal: aligned columns, scores x100."""
    header, rows = score_rows(results)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in [header, *rows]]
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]], numeric: int | None = None) -> str:
    """A Markdown table; the first ``numeric`` columns after the first are right-aligned (default: all)."""
    escape = lambda cell: str(cell).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    numeric = len(header) - 1 if numeric is None else numeric
    alignment = ["---"] + ["---:"] * numeric + ["---"] * (len(header) - 1 - numeric)
    lines = ["| " + " | ".join(map(escape, header)) + " |", "|" + "|".join(alignment) + "|"]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in rows]
    return "\n".join(lines)


def ranked_examples(result, count: int = EXAMPLES) -> tuple[list, list]:
    """The ``count`` best and worst captioned items by per-image CIDEr (ties broken by image name)."""
    ranked = sorted(result.items, key=lambda item: (-result.scores.per_image[item.image].get(RANK_BY, 0.0), item.image))
    count = min(count, len(ranked) // 2) if len(ranked) > 1 else len(ranked)
    return ranked[:count], ranked[::-1][:count] if len(ranked) > 1 else []


def markdown_report(results, figure_name: str | None = "results.png") -> str:
    first = results[0]
    lines = [f"# Caption evaluation: {first.dataset}, {first.split} split", "",
             f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Scores are the official COCO caption "
             "metrics (pycocoevalcap) x100, against the raw reference captions; CIDEr is CIDEr-D.", "",
             markdown_table(*score_rows(results)), "", "## Diversity", ""]
    rows = [[r.model, f"{r.diversity['distinct_captions']} / {r.diversity['captions']} ({r.diversity['distinct_share']:.0%})",
             str(r.diversity["vocabulary"]), f"{r.diversity['mean_length']:.1f}",
             f"{r.diversity['most_common_caption']} ({r.diversity['most_common_share']:.0%})"] for r in results]
    lines += [markdown_table(["model", "distinct captions", "words used", "mean length", "most common caption"], rows, 3), ""]
    for result in results:
        details = [f"decoding: {_decoding_text(result.decoding)}" if result.decoding else "captions from a predictions file",
                   f"tokenizer: {'Stanford PTB' if result.scores.tokenizer == 'ptb' else 'Python stand-in'}"]
        if result.timing.get("images_per_s"):
            details.append(f"{result.timing['images_per_s']:.1f} images/s")
        kind = "" if result.kind == "predictions" else f"{result.kind} model; "
        summary = kind + "; ".join(details) + "."
        lines += [f"## {result.model}", "", summary[0].upper() + summary[1:], ""]
        lines += [f"- **Note:** {note}" for note in result.notes] + ([""] if result.notes else [])
        best, worst = ranked_examples(result)
        for title, chosen in (("Best captions", best), ("Worst captions", worst)):
            if not chosen:
                continue
            lines += [f"{title} (by per-image {RANK_BY}):", ""]
            example_rows = [[item.image, result.captions[item.image] or "(empty)", x100(result.scores.per_image[item.image].get(RANK_BY)),
                             " / ".join(item.references[:2])] for item in chosen]
            lines += [markdown_table(["image", "caption", RANK_BY, "references (first two)"], example_rows, 0), ""]
    if figure_name:
        lines += ["## Examples", "", f"![captions of test images]({figure_name})", ""]
    return "\n".join(lines)


def _decoding_text(decoding: dict) -> str:
    how = f"beam search, {decoding['beam_size']} beams" if decoding["method"] == "beam" else "greedy"
    return f"{how}, at most {decoding['max_length']} words"


def write_report(results, prepared, folder: str | os.PathLike, figure_images: int = 6) -> dict[str, Path]:
    """Write metrics.json, predictions.jsonl, report.md and results.png into ``folder``; returns their paths."""
    if not results:
        raise ValueError("no evaluation results to report")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in ("metrics.json", "predictions.jsonl", "report.md", "results.png")}
    figure_name = None
    if figure_images > 0:
        save_figure(results_figure(results, prepared, figure_images), paths["results.png"])
        figure_name = "results.png"
    else:
        paths.pop("results.png")
    write_json_atomic(paths["metrics.json"], {
        "created_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "prepared": str(prepared.folder), "dataset": results[0].dataset, "split": results[0].split,
        "metric_keys": metric_columns(results), "models": [r.metrics_record() for r in results],
    })
    lines = [json.dumps({"model": r.model, "image": item.image, "caption": r.captions[item.image],
                         "references": list(item.references)}, ensure_ascii=False)
             for r in results for item in r.items]
    write_text_atomic(paths["predictions.jsonl"], "\n".join(lines) + "\n")
    write_text_atomic(paths["report.md"], markdown_report(results, figure_name))
    return paths
