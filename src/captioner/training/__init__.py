"""Training: turning prepared data into model bundles."""
