"""mer_lightning: train, test and compare facial micro-expression classifiers."""

__version__ = "0.1.0"
