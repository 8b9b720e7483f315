"""Data sets on disk: readers, cleaning, vocabulary, splits, the safe image loader and synthetic data."""
