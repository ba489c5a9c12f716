"""Data readers, patching, proportions, splits and the tf.data pipeline."""

from .dataset import IGNORE_LABEL, PatchSet, split_indices
from .dubai import DUBAI_CLASSES, DUBAI_PALETTE, read_dubai
from .images import read_image, read_mask
from .locate import find_dataset
from .pipeline import make_dataset
from .proportions import proportions_from_masks, read_proportions_csv, read_proportions_dataset
from .synthetic import synthetic_patches

__all__ = [
    "IGNORE_LABEL", "PatchSet", "split_indices", "DUBAI_CLASSES", "DUBAI_PALETTE", "read_dubai",
    "read_image", "read_mask", "find_dataset", "make_dataset", "proportions_from_masks",
    "read_proportions_csv", "read_proportions_dataset", "synthetic_patches",
]
