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
from .dataset import IGNORE_LABEL, PatchSet
from .images import colours_to_labels, cut_patches, read_image, read_mask
from .proportions import proportions_from_masks

DUBAI_CLASSES = ["Building", "Land", "Road", "Vegetation", "Water", "Unlabeled"]
DUBAI_PALETTE = np.array(
    [[0x3C, 0x10, 0x98], [0x84, 0x29, 0xF6], [0x6E, 0xC1, 0xE4],
     [0xFE, 0xDD, 0x3A], [0xE2, 0xA9, 0x29], [0x9B, 0x9B, 0x9B]], dtype=np.uint8)
BLACK = (0, 0, 0)
KAGGLE_NAME = "humansintheloop/semantic-segmentation-of-aerial-imagery"
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
    images, masks, sources, origins = [], [], [], []
    for image_path, mask_path in dubai_pairs(root):
        image = read_image(image_path, channels=3)
        labels = colours_to_labels(read_mask(mask_path), DUBAI_PALETTE, mask_path,
                                   ignore_colours=[BLACK], ignore_label=IGNORE_LABEL)
        if image.shape[:2] != labels.shape:
            raise KerasweakError(f"mask size {labels.shape[::-1]} differs from image size {image.shape[1::-1]}", mask_path)
        if min(image.shape[:2]) < patch_size:
            raise KerasweakError(f"image {image.shape[1]}x{image.shape[0]} is smaller than a {patch_size}x{patch_size} patch", image_path)
        cols = image.shape[1] // patch_size
        for k, (img, lab) in enumerate(zip(cut_patches(image, patch_size), cut_patches(labels, patch_size))):
            images.append(img)
            masks.append(lab)
            sources.append(str(image_path.relative_to(Path(root))))
            origins.append(((k // cols) * patch_size, (k % cols) * patch_size))
    masks = np.stack(masks)
    patches = PatchSet(np.stack(images), masks, proportions_from_masks(masks, len(DUBAI_CLASSES)),
                       sources, list(DUBAI_CLASSES), DUBAI_PALETTE, origins)
    if max_samples:
        patches = patches.subset(np.arange(min(max_samples, len(patches))))
    return patches
