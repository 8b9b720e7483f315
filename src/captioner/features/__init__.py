"""Image embeddings: backbones (``build_backbone``), bundle saving, and the on-disk feature cache.

```python
backbone = build_backbone(BackboneSpec("densenet201", weights="imagenet"))
vectors = backbone.embed(images)                                        # (n, 1920) float32
store = ensure_features(PreparedData("prepared/flickr8k"), backbone.spec)  # cached on disk
store.get_many(["1000268201_693b08cb0e.jpg"])                           # (1, 1920)
```

Importing this package loads neither TensorFlow nor Keras; building a Keras backbone does.
"""

from captioner.features.backbones import (BACKBONE_NAMES, DEFAULT_BACKBONE, KERAS_BACKBONES, Backbone,
                                          BackboneSpec, build_backbone)
from captioner.features.cache import FeatureStore, cache_root
from captioner.features.extract import ExtractionSummary, UnreadableImageWarning, ensure_features, extract_features
from captioner.features.saving import load_backbone, save_backbone

__all__ = [
    "BACKBONE_NAMES", "DEFAULT_BACKBONE", "KERAS_BACKBONES", "Backbone", "BackboneSpec", "ExtractionSummary",
    "FeatureStore", "UnreadableImageWarning", "build_backbone", "cache_root", "ensure_features",
    "extract_features", "load_backbone", "save_backbone",
]
