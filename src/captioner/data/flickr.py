"""Caption data sets on disk: the public entry points.

``detect_layout(root)`` names a folder's layout, ``read_dataset(root)`` reads it into images with their raw
captions (``CaptionDataset``), ``split_dataset(dataset, settings)`` gives the train/val/test image lists.
The readers live in ``readers.py``, the split rules in ``splits.py``, the download in ``download.py``.
"""

from __future__ import annotations

from captioner.data.readers import LAYOUT_HELP, detect_layout, read_dataset
from captioner.data.splits import split_dataset


__all__ = ["LAYOUT_HELP", "detect_layout", "read_dataset", "split_dataset"]
