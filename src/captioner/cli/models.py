"""`captioner models`: list installed model bundles; `captioner models download vit-gpt2`."""

from __future__ import annotations

from captioner.cli.common import print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="list installed models, or download the pretrained ViT-GPT2",
        description="List the model bundles in the models folder with their kind, data set, size and metrics.")
    parser.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=list_models)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    download = actions.add_parser("download", help="download a pretrained model into the local cache")
    download.add_argument("model", choices=["vit-gpt2"], help="which model")
    download.add_argument("--json", action="store_true", help="print the result as JSON")
    download.set_defaults(handler=download_model)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def metric_summary(metrics: dict) -> str:
    """``split: NAME=value, ...`` for every split, numbers rounded."""
    parts = []
    for split, values in sorted(metrics.items()):
        if isinstance(values, dict):
            shown = ", ".join(f"{name}={value:.4g}" if isinstance(value, (int, float)) else f"{name}={value}"
                              for name, value in values.items())
            parts.append(f"{split}: {shown}")
    return "; ".join(parts) or "-"


def list_models(args) -> int:
    from captioner.models.bundle import bundle_size, models_dir
    from captioner.models.registry import list_models

    folder = models_dir(args.models_dir)
    rows = [{"name": info.name, "kind": info.kind, "dataset": info.dataset, "backbone": info.backbone,
             "path": str(path), "size_bytes": bundle_size(path), "created_at": info.created_at,
             "metrics": info.metrics} for path, info in list_models(folder)]
    if args.json:
        print_json({"models_dir": str(folder), "models": rows})
        return 0
    if not rows:
        print(f"no models in {folder}; train one with 'captioner train lstm' "
              "or fetch the pretrained one with 'captioner models download vit-gpt2'")
        return 0
    print(f"models in {folder}:")
    for row in rows:
        print(f"{row['name']}\t{row['kind']}\t{row['dataset'] or '-'}\t{row['backbone'] or '-'}\t"
              f"{human_size(row['size_bytes'])}\t{metric_summary(row['metrics'])}")
    return 0


def download_model(args) -> int:
    try:
        from captioner.models.vit_gpt2 import download_pretrained
    except ImportError as error:
        from captioner.errors import ModelError

        raise ModelError(f"ViT-GPT2 support is not available here ({error}); install captioner[vit]") from None
    result = download_pretrained(model_id=None)
    if args.json:
        print_json({"model": args.model, "result": result})
    else:
        print(f"{args.model} downloaded: {result}")
    return 0
