"""Datasets by name, offline. See :func:`load_dataset` and ``advtopo datasets``."""
from advtopo.data.datasets import DATASETS, SOURCES, ImageDataset, list_datasets, load_dataset, read_idx

__all__ = ["DATASETS", "SOURCES", "ImageDataset", "list_datasets", "load_dataset", "read_idx"]
