"""Data readers, patching, proportions, sizes, keypoints, degraded proportions, splits and the tf.data pipeline."""

from .dataset import IGNORE_LABEL, PatchSet, split_indices
from .degrade import clustered_proportions, degrade_proportions, noisy_proportions
from .dubai import DUBAI_CLASSES, DUBAI_PALETTE, read_dubai
from .folder import read_folder
from .folder_stream import Folder, load_folder
from .epfl import EPFL_CLASSES, EPFL_PALETTE, read_epfl, read_epfl_png, read_epfl_tiff
from .hippocampus import HIPPOCAMPUS_CLASSES, HIPPOCAMPUS_PALETTE, read_hippocampus, split_hippocampus
from .images import read_image, read_mask
from .keypoints import keypoint_arrays, read_keypoints_file, read_patch_keypoints, sample_keypoints
from .registry import (DATASETS, Dataset, find_dataset, get_dataset, read_dataset, read_patches, read_test_patches,
                       recipe_split)
from .pipeline import make_dataset
from .sizes import mask_sizes, read_sizes_csv, sizes_for_sources
from .proportions import proportions_from_masks, read_proportions_csv, read_proportions_dataset
from .synthetic import synthetic_patches

__all__ = [
    "IGNORE_LABEL", "PatchSet", "split_indices", "clustered_proportions", "degrade_proportions", "noisy_proportions",
    "DUBAI_CLASSES", "DUBAI_PALETTE", "read_dubai", "EPFL_CLASSES", "EPFL_PALETTE", "read_epfl",
    "read_epfl_png", "read_epfl_tiff", "HIPPOCAMPUS_CLASSES", "HIPPOCAMPUS_PALETTE", "mask_sizes", "read_hippocampus",
    "split_hippocampus", "read_image", "read_mask", "read_keypoints_file", "read_patch_keypoints",
    "keypoint_arrays", "sample_keypoints",
    "DATASETS", "Dataset", "get_dataset", "read_dataset", "read_patches", "read_test_patches", "recipe_split", "find_dataset", "make_dataset", "proportions_from_masks", "read_proportions_csv", "read_proportions_dataset",
    "synthetic_patches", "read_sizes_csv", "sizes_for_sources", "Folder", "load_folder", "read_folder",
]
