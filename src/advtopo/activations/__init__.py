"""Activations of named layers (forward hooks), summarised per sample, streamed to zarr.

``capture(model, data, layers, ...)`` -> arrays or a zarr store; ``sample_table`` builds
the per-sample Parquet rows; ``images_uint8`` makes thumbnails.
"""
from advtopo.activations.capture import (LayerSpec, as_layer_specs, capture, iter_capture, layer_dims,
                                         prediction_stats, resolve_modules)
from advtopo.activations.featurevis import FeatureVisResult, FeatureVisualizer
from advtopo.activations.store import (SAMPLE_COLUMNS, ActivationWriter, CorruptActivations, images_uint8,
                                       open_activations, read_activations, sample_table, write_npy, write_parquet)
from advtopo.activations.summaries import SUMMARIES, summarize, summary_dim

__all__ = ["LayerSpec", "as_layer_specs", "capture", "iter_capture", "layer_dims", "prediction_stats",
           "resolve_modules", "SAMPLE_COLUMNS", "ActivationWriter", "CorruptActivations", "images_uint8", "open_activations",
           "read_activations", "sample_table", "write_npy", "write_parquet", "SUMMARIES", "summarize",
           "summary_dim", "FeatureVisualizer", "FeatureVisResult"]
