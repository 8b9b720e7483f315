"""`captioner features DATASET_DIR`: compute (or find in the cache) the image embeddings of a data set."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from captioner.cli.common import positive_int, print_json
from captioner.features.backbones import BACKBONE_NAMES, BackboneSpec

BACKBONE_DEFAULTS = BackboneSpec()


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "features", help="compute the image embeddings of a data set into the feature cache",
        description="Embed every image of a data set with a backbone and keep the results in the feature cache "
                    "($CAPTIONER_CACHE_DIR/features, default ~/.cache/captioner/features). A second run finds "
                    "them there; an interrupted run resumes.")
    parser.add_argument("dataset", metavar="DATASET_DIR",
                        help="a prepared folder (with prepared.json) or a raw data set folder")
    parser.add_argument("--backbone", default=BACKBONE_DEFAULTS.name, choices=BACKBONE_NAMES,
                        help=f"image encoder (default: {BACKBONE_DEFAULTS.name})")
    parser.add_argument("--weights", default=None, metavar="imagenet|none|PATH",
                        help="ImageNet weights (Keras cache or download; the default), 'none' for seeded random "
                             "weights, or a local .weights.h5/.keras/.h5 file")
    parser.add_argument("--image-size", type=positive_int, metavar="N",
                        help="side in pixels the backbone sees (default: the backbone's own)")
    parser.add_argument("--precision", default=BACKBONE_DEFAULTS.precision, metavar="float32|bfloat16",
                        help="how the backbone computes: float32 (default) or bfloat16, faster on CPUs with AVX-512 BF16 "
                             "or AMX and on recent GPUs, with embeddings within about 1%% of float32 (Keras backbones; "
                             "cached apart from float32 features)")
    parser.add_argument("--grid", action="store_true",
                        help="keep the last convolutional map (DenseNet201: 7x7x1920 at 224 px), stored in float16, "
                             "for the attention captioner, instead of one pooled vector per image")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="images per model call")
    parser.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: $CAPTIONER_CACHE_DIR or ~/.cache/captioner)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def dataset_images(folder: Path) -> tuple[Path, list[str], str]:
    """The images folder, the image names and a short description of a prepared or raw data set folder."""
    from captioner.data.prepared import PREPARED_FILE, PreparedData
    from captioner.data.records import SPLITS

    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; give a prepared folder or a data set folder")
    if (folder / PREPARED_FILE).is_file():
        prepared = PreparedData(folder)
        names = [item.image for split in SPLITS for item in prepared.split(split)]
        return prepared.images_dir, names, f"prepared data set {prepared.name}"
    from captioner.data.flickr import read_dataset

    dataset = read_dataset(folder)
    return dataset.images_dir, [item.image for item in dataset.items], f"{dataset.layout} data set {dataset.name}"


def run(args) -> int:
    from captioner.features import BackboneSpec, extract_features

    spec = BackboneSpec(args.backbone, weights=args.weights or "imagenet", image_size=args.image_size,
                        precision=args.precision, grid=args.grid)
    images_dir, names, described = dataset_images(Path(args.dataset))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unreadable images are listed in the summary below instead
        store = extract_features(images_dir, names, spec, cache_dir=args.cache_dir, batch_size=args.batch_size,
                                 progress=True)
    summary = store.summary
    if args.json:
        print_json({"dataset": str(args.dataset), "images_dir": str(images_dir), "cache": str(store.path),
                    "backbone": spec.to_dict(), "dim": store.dim, "shape": list(store.shape), **summary.to_dict()})
        return 0
    print(f"{described}: {summary.requested} images in {images_dir}")
    shape = " x ".join(map(str, store.shape))
    print(f"backbone: {spec.name} ({shape} values, {spec.size} px, weights {spec.weights}, {spec.precision})")
    print(f"cache: {store.path}")
    print(f"{summary.computed} computed, {summary.found} found in the cache, {len(summary.skipped)} skipped "
          f"({summary.seconds:.1f} s)")
    for reason in summary.skipped.values():
        print(f"skipped (unreadable): {reason}", file=sys.stderr)
    return 0
