"""`captioner models`: list installed bundles and downloaded pretrained models; `captioner models download NAME|ID`."""

from __future__ import annotations

from captioner.cli.common import print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="list installed models, or download a pretrained one",
        description="List the model bundles in the models folder with their kind, data set, size and metrics, and "
                    "the pretrained image-to-text models in the Hugging Face cache with their size.")
    parser.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=list_models)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    download = actions.add_parser("download", help="download a pretrained model into the local cache")
    download.add_argument("model", metavar="NAME|ID",
                          help="a short name (vit-gpt2, blip-base, blip-large, git-base-coco, florence-2-base, "
                               "florence-2-base-ft) or any hub id of a ViT-GPT2, BLIP, GIT or Florence-2 model; "
                               "clip-vit-base-patch32 for --score clip")
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
             "metrics": info.metrics, "source": "bundle"} for path, info in list_models(folder)]
    pretrained = downloaded_models()
    if args.json:
        print_json({"models_dir": str(folder), "models": rows, "pretrained": pretrained})
        return 0
    if not rows and not pretrained:
        print(f"no models in {folder} and none downloaded; train one with 'captioner train lstm' "
              "or fetch a pretrained one with 'captioner models download florence-2-base-ft'")
        return 0
    if rows:
        print(f"models in {folder}:")
    for row in rows:
        print(f"{row['name']}\t{row['kind']}\t{row['dataset'] or '-'}\t{row['backbone'] or '-'}\t"
              f"{human_size(row['size_bytes'])}\t{metric_summary(row['metrics'])}")
    if pretrained:
        print("downloaded pretrained models (Hugging Face cache):")
    for row in pretrained:
        quality = f"COCO CIDEr {row['coco_cider']:g} (published)" if row.get("coco_cider") else "-"
        print(f"{row['name']}\t{row['architecture']}\t{row['model_id'] or '-'}@{(row['revision'] or '-')[:12]}\t"
              f"{human_size(row['size_bytes'])}\t{quality}\t{row['path']}")
    return 0


def downloaded_models() -> list[dict]:
    """The pretrained image-to-text models in the hub cache, with their published quality when known."""
    try:
        from captioner.models.transformers.hub import cached_models
        from captioner.models.transformers.pretrained import known_model
    except ImportError:  # without the transformers extra there is no hub cache to read
        return []
    rows = []
    for row in cached_models():
        known = known_model(row["model_id"])
        rows.append({**row, "source": "hub cache", "coco_cider": known.coco_cider if known else None})
    return rows


def download_model(args) -> int:
    try:
        from captioner.models.transformers.hub import download_pretrained
        from captioner.models.transformers.pretrained import hub_reference
    except ImportError as error:
        from captioner.errors import ModelError

        raise ModelError(f"pretrained model support is not available here ({error}); install captioner[vit]") from None
    from captioner.evaluation.clipscore import known_clip

    clip = known_clip(args.model)
    model_id, revision = (clip.model_id, clip.revision) if clip else hub_reference(args.model)
    result = download_pretrained(model_id, revision=revision)
    if clip:
        architecture = "clip, for --score clip"
    else:
        from captioner.models.transformers.architectures import architecture_of

        architecture = architecture_of(result).name  # a repository that is no captioner fails here, named
    if args.json:
        print_json({"model": args.model, "model_id": model_id, "revision": revision, "architecture": architecture,
                    "result": result})
    else:
        print(f"{args.model} ({architecture}) downloaded: {result}")
    return 0
