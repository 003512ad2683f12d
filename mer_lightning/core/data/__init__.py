"""Data: find the Kaggle layout, decode it once into memory, split, augment, load."""
