"""A tiny synthetic dataset for the demo and the tests (never used in place of real data).

Each class has its own colour; patches are made of random rectangles of classes
plus noise, so proportions and masks are exact and a small network can learn it.
"""

import numpy as np

from .dataset import PatchSet
from .proportions import proportions_from_masks

SYNTHETIC_COLOURS = np.array([[40, 40, 40], [200, 60, 60], [60, 200, 60], [60, 60, 200]], dtype=np.uint8)


def synthetic_patches(n=64, size=32, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for mask in masks:
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, size - 4, 2)
            h, w = rng.integers(4, size // 2 + 1, 2)
            mask[y:y + h, x:x + w] = rng.integers(1, num_classes)
    colours = SYNTHETIC_COLOURS[:num_classes].astype(np.int16)
    noise = rng.integers(-20, 21, size=(n, size, size, 3))
    images = np.clip(colours[masks] + noise, 0, 255).astype(np.uint8)
    names = [f"class{c}" for c in range(num_classes)]
    return PatchSet(images, masks, proportions_from_masks(masks, num_classes),
                    ["synthetic"] * n, names, SYNTHETIC_COLOURS[:num_classes])
