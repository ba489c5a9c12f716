"""`PatchSet`, the container every reader returns, and the split."""

from dataclasses import dataclass, field

import numpy as np

from ..constants import IGNORE_LABEL  # re-exported: the mask value of pixels that belong to no class
from .lazy import take


@dataclass
class PatchSet:
    """Equal-sized patches with their labels.

    images: (N, H, W, channels) uint8, raw pixel values.
    masks: (N, H, W) uint8 class indices, IGNORE_LABEL where unlabelled; None if no masks.
        A large generic folder's images and masks are LazyPatches (kerasweak.data.lazy),
        decoded when indexed; subset keeps them lazy.
    proportions: (N, C) float32 class proportions, each row summing to 1; for binary
        data with one sigmoid output, (N, 1) foreground fractions.
    sources: the file each patch was cut from.
    class_names, palette: class names and their RGB colours (C, 3).
    origins: each patch's (row, col) top-left pixel in its source image; empty if not cut from larger images.
    source_shapes: {source: (height, width)} of every whole image read (max_samples drops patches, not these).
    sizes: (N,) float32 object sizes (2 · max Chebyshev distance) for size supervision; None if not given.
    keypoints: per patch, a (k, 4) int32 array of user keypoints (row, col, channel, label); None to sample them from the masks.
    split: per patch "train", "val" or "test" (a split by source image, e.g. a generic folder's split.csv);
        None to split the patches at random (registry.recipe_split).
    valid: (N, H, W) uint8, 1 where the patch shows its image and 0 in padding, for whole images
        scaled into the patch (a mask-free generic folder; its proportions describe the valid pixels
        only); None for patches cut at native scale, every pixel valid.
    """

    images: np.ndarray
    masks: np.ndarray | None
    proportions: np.ndarray
    sources: list
    class_names: list
    palette: np.ndarray
    origins: list = field(default_factory=list)
    source_shapes: dict = field(default_factory=dict)
    sizes: np.ndarray | None = None
    keypoints: list | None = None
    split: np.ndarray | None = None
    valid: np.ndarray | None = None

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self):
        return len(self.class_names)

    def subset(self, index):
        index = np.asarray(index)
        return PatchSet(
            images=take(self.images, index),
            masks=None if self.masks is None else take(self.masks, index),
            proportions=self.proportions[index],
            sources=[self.sources[i] for i in index],
            class_names=self.class_names,
            palette=self.palette,
            origins=[self.origins[i] for i in index] if self.origins else [],
            source_shapes=self.source_shapes,
            sizes=None if self.sizes is None else self.sizes[index],
            keypoints=None if self.keypoints is None else [self.keypoints[i] for i in index],
            split=None if self.split is None else self.split[index],
            valid=None if self.valid is None else self.valid[index],
        )


def split_indices(n, test_fraction=0.2, val_fraction=0.1, seed=0):
    """Random patch-level split into (train, val, test) index arrays.

    The test part is `test_fraction` of all patches (the paper's 80/20); the
    validation part, used only for early stopping, is `val_fraction` of the rest.
    The split depends on `seed` only, so every training seed sees the same split.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    test, rest = order[:n_test], order[n_test:]
    n_val = int(round(len(rest) * val_fraction))
    return np.sort(rest[n_val:]), np.sort(rest[:n_val]), np.sort(test)


SPLIT_PARTS = ("train", "val", "test")


def split_of(parts):
    """(train, val, test) index arrays of a per-patch array of "train", "val" and "test" (PatchSet.split)."""
    parts = np.asarray(parts)
    return tuple(np.flatnonzero(parts == part) for part in SPLIT_PARTS)
