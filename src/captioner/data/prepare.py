"""``captioner data prepare``: a data set folder becomes a prepared folder (cleaned captions per split,
the training vocabulary, and a summary of what was kept and dropped).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from captioner.config import DataSettings, settings_to_dict
from captioner.data.flickr import read_dataset, split_dataset
from captioner.data.prepared import PREPARED_FILE, PreparedData, PreparedItem, write_prepared
from captioner.data.records import SPLITS
from captioner.data.text import END, START, Vocabulary, clean_caption
from captioner.errors import DataError


def prepare_dataset(dataset_dir: str | os.PathLike, out_dir: str | os.PathLike,
                    settings: DataSettings | None = None) -> dict:
    """Read, split and clean the data set in ``dataset_dir``, write the prepared folder ``out_dir``
    (all or nothing) and return its summary (the meta written to ``prepared.json``)."""
    out = Path(out_dir).expanduser().resolve()
    _check_output_folder(out)
    meta, vocabulary, prepared = prepare_in_memory(dataset_dir, settings)
    write_prepared(out, meta, vocabulary, prepared)
    return meta


def open_dataset(folder: str | os.PathLike) -> PreparedData:
    """A prepared folder, or a raw data set folder in any supported layout, prepared in memory with the
    default settings (what evaluation needs: the splits and the raw reference captions)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise DataError(f"data set folder {path} does not exist; give a prepared folder or a data set folder")
    if (path / PREPARED_FILE).is_file():
        return PreparedData(path)
    return PreparedData.in_memory(path, *prepare_in_memory(path))


def prepare_in_memory(dataset_dir: str | os.PathLike, settings: DataSettings | None = None
                      ) -> tuple[dict, Vocabulary, dict[str, list[PreparedItem]]]:
    """What a prepared folder holds, without writing it: (meta, training vocabulary, items per split)."""
    settings = settings or DataSettings()
    clean_caption("", settings.preset)  # an unknown preset fails here, before any work
    dataset = read_dataset(dataset_dir)
    splits = split_dataset(dataset, settings)
    by_image = {item.image: item for item in dataset.items}

    present = {name for name in by_image if dataset.image_path(name).is_file()}
    if not present:
        raise DataError(f"none of the {len(by_image)} images named in the captions is in {dataset.images_dir}; "
                        f"run 'captioner data download flickr8k --dest {dataset.root}' to fetch the images")
    dropped = [{"image": name, "reason": f"image file missing from {dataset.images_dir}"}
               for name in by_image if name not in present]
    in_a_split = {name for names in splits.values() for name in names}
    dropped += [{"image": name, "reason": "in none of the data set's splits"}
                for name in by_image if name in present and name not in in_a_split]

    prepared: dict[str, list[PreparedItem]] = {}
    empty_captions = 0
    for split in SPLITS:
        items = []
        for name in splits[split]:
            if name not in present:
                continue
            raw = by_image[name].captions
            cleaned = [clean_caption(caption, settings.preset) for caption in raw]
            kept = tuple(c for c in cleaned if c != f"{START} {END}")
            empty_captions += len(cleaned) - len(kept)
            if kept:
                items.append(PreparedItem(name, kept, tuple(raw)))
            else:
                dropped.append({"image": name, "reason": "no words left in any caption after cleaning"})
        if not items:
            raise DataError(f"the {split} split of {dataset.root} is empty (no image of it has a file and a caption); "
                            "add images, or check the split files and the images folder")
        prepared[split] = items

    training = [caption for item in prepared["train"] for caption in item.captions]
    vocabulary = Vocabulary.build(training, preset=settings.preset, min_count=settings.min_count)
    notes = list(dataset.notes)
    if empty_captions:
        notes.append(f"{empty_captions} caption(s) had no words left after cleaning and were left out")
    meta = {
        "name": dataset.name,
        "dataset": str(dataset.root),
        "images_dir": str(Path(dataset.images_dir).resolve()),
        "layout": dataset.layout,
        "preset": settings.preset,
        "min_count": settings.min_count,
        "seed": settings.seed,
        "settings": settings_to_dict(settings),
        "split_source": "data set" if dataset.splits is not None else "seeded",
        "vocab_size": len(vocabulary),
        "max_length": vocabulary.max_length,
        "mean_length": round(sum(len(c.split()) for c in training) / len(training), 3),
        "splits": {split: {"images": len(items), "captions": sum(len(i.captions) for i in items)}
                   for split, items in prepared.items()},
        "dropped": dropped,
        "notes": notes,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return meta, vocabulary, prepared


def _check_output_folder(out: Path) -> None:
    """Refuse to replace a folder that is not a prepared folder (a typo must not wipe someone's files)."""
    if out.is_file():
        raise DataError(f"{out} is a file; give a folder for the prepared data")
    if out.is_dir() and any(out.iterdir()) and not (out / PREPARED_FILE).is_file():
        raise DataError(f"{out} already holds files that are not prepared data; give an empty or new folder")
