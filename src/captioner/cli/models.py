"""`captioner models`: list installed bundles and downloaded pretrained models; `captioner models download NAME|ID`;
`captioner models export NAME`: its ONNX graphs, ahead of time;
`captioner models add-remote NAME --url URL --api openai|ollama --model ID`: register a served model."""

from __future__ import annotations

from captioner.cli.common import positive_int, print_json


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
    export = actions.add_parser(
        "export", help="export a transformers captioner's encoder and decoder step to ONNX ahead of time",
        description="Export the model's image encoder and cached decoder step as ONNX graphs, check them against "
                    "PyTorch on a probe input, and cache them, so that --runtime onnx (or auto) starts at once.")
    export.add_argument("model", metavar="NAME|PATH|ID", help="a model bundle, model folder, short name or hub id")
    export.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    export.add_argument("--int8", action="store_true",
                        help="also make the int8 graphs (--runtime onnx --precision int8) from the checked ones")
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    export.set_defaults(handler=export_model)
    add_remote_parser(actions)


def add_remote_parser(actions) -> None:
    remote = actions.add_parser(
        "add-remote", help="register a model served by an OpenAI-compatible or Ollama endpoint",
        description="Write a model bundle for a model that another server runs (vLLM, Ollama, llama.cpp, OpenAI, "
                    "another captioner server). It then loads wherever a model loads. The API key stays in the "
                    "environment: the bundle records only the variable's name.")
    remote.add_argument("name", metavar="NAME", help="the bundle's name (a folder in the models folder)")
    remote.add_argument("--url", action="append", required=True, metavar="URL",
                        help="the endpoint's base URL, e.g. http://gpu-1:8000/v1 (openai) or http://gpu-1:11434 "
                             "(ollama); repeat it to spread requests over several servers")
    remote.add_argument("--api", choices=("openai", "ollama"), required=True, help="the protocol the endpoint speaks")
    remote.add_argument("--model", required=True, metavar="REMOTE_ID",
                        help="the model's id on the endpoint, e.g. Qwen/Qwen3-VL-2B-Instruct or qwen2.5vl:3b")
    remote.add_argument("--key-env", default="", metavar="VAR",
                        help="the environment variable that holds the API key (sent as a bearer token)")
    remote.add_argument("--concurrency", type=positive_int, default=4, metavar="N",
                        help="most requests in flight from one process, over all URLs (4)")
    remote.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds a request may take (60)")
    remote.add_argument("--retries", type=int, default=3, metavar="N",
                        help="further tries after a 429, a 5xx, a timeout or a refused connection (3)")
    remote.add_argument("--max-side", type=positive_int, default=1024, metavar="PX",
                        help="images are sent as JPEG of at most this many pixels a side (1024)")
    remote.add_argument("--no-logprobs", action="store_true",
                        help="do not ask for token log-probabilities (for endpoints that refuse them); "
                             "captions then carry no score")
    remote.add_argument("--replace", action="store_true", help="replace a bundle of the same name")
    remote.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    remote.add_argument("--json", action="store_true", help="print the bundle written as JSON")
    remote.set_defaults(handler=add_remote)


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
    from captioner.models.taggers.pretrained import known_tagger, tagger_folder

    tagger = known_tagger(args.model)
    if tagger is not None:
        folder = tagger_folder(tagger)
        if args.json:
            print_json({"model": tagger.name, "model_id": tagger.model_id, "revision": tagger.revision,
                        "architecture": "wd-tagger", "result": folder})
        else:
            print(f"{tagger.name} (wd-tagger, {tagger.licence}) downloaded: {folder}")
        return 0

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


def export_model(args) -> int:
    from captioner import environment
    from captioner.errors import ModelError
    from captioner.models.registry import load_captioner

    environment.choose(precision="float32", runtime="torch")  # the graphs are traced from the float32 model
    captioner = load_captioner(args.model, args.models_dir)
    decoder = getattr(captioner, "cached_decoder", None)
    if decoder is None:
        raise ModelError(f"{args.model} has no cached decoder step to export; it runs in PyTorch")
    from captioner.models.transformers.model_inputs import probe_inputs
    from captioner.models.transformers.onnx_export import graphs_for

    # an export that fails, or fails its check, is one error line
    graphs = graphs_for(decoder, captioner.architecture, probe_inputs(captioner.parts))
    result = {"model": args.model, "architecture": captioner.architecture, "graphs": str(graphs.folder)}
    if args.int8:
        from captioner.models.transformers.onnx_int8 import int8_graphs

        result["int8_graphs"] = str(int8_graphs(graphs).folder)
    if args.json:
        print_json(result)
    else:
        print(f"{args.model} ({captioner.architecture}) exported and checked: {graphs.folder}")
        if args.int8:
            print(f"int8 graphs: {result['int8_graphs']}")
    return 0


def add_remote(args) -> int:
    from captioner.models.remote.registration import add_remote as write_remote
    from captioner.models.remote.settings import RemoteSettings

    settings = RemoteSettings(api=args.api, urls=tuple(args.url), model=args.model, key_env=args.key_env,
                              concurrency=args.concurrency, timeout_s=args.timeout, retries=args.retries,
                              max_side=args.max_side, logprobs=not args.no_logprobs)
    folder = write_remote(args.name, settings, args.models_dir, replace=args.replace)
    if args.json:
        print_json({"name": args.name, "path": str(folder), "kind": "remote", "remote": settings.to_dict()})
    else:
        key = f", key from ${settings.key_env}" if settings.key_env else ""
        print(f"{args.name}: {settings.api} model {settings.model} at {', '.join(settings.urls)}{key} -> {folder}")
    return 0
