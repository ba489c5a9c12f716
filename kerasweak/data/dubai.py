"""Reader for Aerial Dubai ("Semantic segmentation of aerial imagery", Kaggle layout).

Layout: `Semantic segmentation dataset/Tile N/images/*.jpg` and `.../masks/*.png`.
Classes come from the mask colours below; classes.json in the release lists other
colours (a known quirk) and is not used.

Black (#000000) pixels, which belong to no class (about 17% of
Tile 8/image_part_003), are mapped to IGNORE_LABEL: they count neither in the
proportions nor in training losses nor in evaluation.
"""

import re
from pathlib import Path

import numpy as np

from ..errors import KerasweakError
from .dataset import IGNORE_LABEL
from .images import colours_to_labels, read_image, read_mask
from .patching import patch_set_from_images

DUBAI_CLASSES = ["Building", "Land", "Road", "Vegetation", "Water", "Unlabeled"]
DUBAI_PALETTE = np.array(
    [[0x3C, 0x10, 0x98], [0x84, 0x29, 0xF6], [0x6E, 0xC1, 0xE4],
     [0xFE, 0xDD, 0x3A], [0xE2, 0xA9, 0x29], [0x9B, 0x9B, 0x9B]], dtype=np.uint8)
BLACK = (0, 0, 0)
LAYOUT_HINT = "'Semantic segmentation dataset/Tile N/images/*.jpg' and '.../masks/*.png'"


def _number(path):
    found = re.findall(r"\d+", path.name)
    return int(found[-1]) if found else -1


def dubai_pairs(root):
    """(image, mask) path pairs in tile and file order."""
    root = Path(root)
    tiles = sorted((p for p in root.glob("Tile *") if p.is_dir()), key=_number)
    if not tiles:
        raise KerasweakError(f"no 'Tile N' folders; expected the Kaggle layout {LAYOUT_HINT}", root)
    pairs = []
    for tile in tiles:
        images = sorted((tile / "images").glob("*.jpg"), key=_number)
        if not images:
            raise KerasweakError("empty folder: no .jpg images", tile / "images")
        for image in images:
            mask = tile / "masks" / (image.stem + ".png")
            if not mask.exists():
                raise KerasweakError("mask missing for this image", mask)
            pairs.append((image, mask))
    return pairs


def read_dubai(root, patch_size=224, max_samples=None):
    """All non-overlapping patch_size² patches (remainders dropped): 1647 at 224."""

    def items():
        for image_path, mask_path in dubai_pairs(root):
            labels = colours_to_labels(read_mask(mask_path), DUBAI_PALETTE, mask_path,
                                       ignore_colours=[BLACK], ignore_label=IGNORE_LABEL)
            yield read_image(image_path, channels=3), labels, str(image_path.relative_to(Path(root))), image_path

    return patch_set_from_images(items(), patch_size, DUBAI_CLASSES, DUBAI_PALETTE, max_samples)
