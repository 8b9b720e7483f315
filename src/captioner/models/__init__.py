"""Captioning models behind one interface (:mod:`captioner.models.base`)."""
