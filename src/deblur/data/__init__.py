"""Datasets, degradations and the input pipeline."""
