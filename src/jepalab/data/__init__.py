"""Datasets for real-image pretraining: a name → builder registry (Fashion-MNIST IDX files, any image folder),
uint8 image tensors in memory or streamed, deterministic batch plans and batched torch augmentations.

Add a dataset by writing a module in this package whose builder is decorated with :func:`register_dataset`;
it is discovered on first use (``available_datasets()``), nothing else needs editing.
"""

from jepalab.data.augment import augment, centre_boxes, crop_resize, eval_view, normalise, sample_crops, sample_flips
from jepalab.data.config import DataConfig
from jepalab.data.dataset import BatchLoader, ImageDataset, channel_stats, to_device
from jepalab.data.idx import read_idx, write_idx
from jepalab.data.registry import DatasetSpec, available_datasets, build_dataset, dataset_spec, register_dataset
from jepalab.data.sampler import EpochPlan, derive_seed, step_generator

__all__ = [
    "BatchLoader",
    "DataConfig",
    "DatasetSpec",
    "EpochPlan",
    "ImageDataset",
    "augment",
    "available_datasets",
    "build_dataset",
    "centre_boxes",
    "channel_stats",
    "crop_resize",
    "dataset_spec",
    "derive_seed",
    "eval_view",
    "normalise",
    "read_idx",
    "register_dataset",
    "sample_crops",
    "sample_flips",
    "step_generator",
    "to_device",
    "write_idx",
]
