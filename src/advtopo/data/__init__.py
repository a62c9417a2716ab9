"""Datasets by name, offline. See :func:`load_dataset` and ``advtopo datasets``."""
from advtopo.data.datasets import (DATASETS, SOURCES, ImageDataset, LazyDataset, check_dataset_options,
                                   dataset_options, list_datasets, load_dataset, probe_dataset, read_idx,
                                   subset_indices)
from advtopo.data.imagefolder import list_image_folder  # registers "imagefolder"
from advtopo.data.torch_dataset import from_torch_dataset

__all__ = ["DATASETS", "SOURCES", "ImageDataset", "LazyDataset", "check_dataset_options", "dataset_options",
           "from_torch_dataset", "list_datasets", "list_image_folder", "load_dataset", "probe_dataset", "read_idx",
           "subset_indices"]
