"""The Immich connector: caption an Immich library through its API, with the photo library's rules
(:mod:`~captioner.collections.immich.sync`), a local record of what captioner wrote
(:mod:`~captioner.collections.immich.state`) and Immich's HTTP API (:mod:`~captioner.collections.immich.client`)."""
