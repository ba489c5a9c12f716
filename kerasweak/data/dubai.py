"""Reader for Aerial Dubai ("Semantic segmentation of aerial imagery", Kaggle layout).

Layout: `Semantic segmentation dataset/Tile N/images/*.jpg` and `.../masks/*.png`.
Images of every common extension in any case are read (.jpg, .JPG, .jpeg, .png,
…; two images of one name are an error); only folders named exactly `Tile N` are,
so a copied `Tile 1 - Copy` is skipped with a warning, not read twice.
Classes come from the mask colours below; classes.json in the release lists other
colours (a known quirk) and is not used.

Black (#000000) pixels, which belong to no class (about 17% of
Tile 8/image_part_003), are mapped to IGNORE_LABEL: they count neither in the
proportions nor in training losses nor in evaluation.
"""

import re
import sys
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
TILE = re.compile(r"^Tile \d+$")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
LAYOUT_HINT = "'Semantic segmentation dataset/Tile N/images/*.jpg' and '.../masks/*.png'"


def _number(path):
    found = re.findall(r"\d+", path.name)
    return int(found[-1]) if found else -1


def dubai_pairs(root):
    """(image, mask) path pairs in tile and file order."""
    root = Path(root)
    tiles = sorted((p for p in root.iterdir() if p.is_dir() and TILE.match(p.name)), key=_number) if root.is_dir() else []
    if not tiles:
        raise KerasweakError(f"no 'Tile N' folders; expected the Kaggle layout {LAYOUT_HINT}", root)
    for other in sorted(p for p in root.glob("Tile*") if p.is_dir() and not TILE.match(p.name)):
        warn(f"{other}: not read (Aerial Dubai reads only folders named 'Tile N'; a copy would be read twice)")
    pairs = []
    for tile in tiles:
        images = _images(tile / "images")
        masks = {p.stem: p for p in (tile / "masks").glob("*") if p.suffix.lower() == ".png"}
        for image in images:
            mask = masks.get(image.stem, tile / "masks" / (image.stem + ".png"))
            if not mask.exists():
                raise KerasweakError("mask missing for this image", mask)
            pairs.append((image, mask))
    return pairs


def _images(folder):
    """The images of a tile's images/ folder, of any extension in IMAGE_SUFFIXES and any case, in file-number order."""
    images = sorted((p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: (_number(p), p.name))
    if not images:
        raise KerasweakError(f"empty folder: no images ({', '.join(IMAGE_SUFFIXES)})", folder)
    stems = {}
    for image in images:
        if image.stem in stems:
            raise KerasweakError(f"two images named {image.stem!r} ({stems[image.stem].name}, {image.name}) share one mask",
                                 folder)
        stems[image.stem] = image
    return images


def warn(message):
    """A data warning: one line on stderr, the run goes on."""
    print(f"warning: {message}", file=sys.stderr)


def read_dubai(root, patch_size=224, max_samples=None):
    """All non-overlapping patch_size² patches (remainders dropped): 1647 at 224."""

    def items():
        for image_path, mask_path in dubai_pairs(root):
            labels = colours_to_labels(read_mask(mask_path), DUBAI_PALETTE, mask_path,
                                       ignore_colours=[BLACK], ignore_label=IGNORE_LABEL)
            yield read_image(image_path, channels=3), labels, str(image_path.relative_to(Path(root))), image_path

    return patch_set_from_images(items(), patch_size, DUBAI_CLASSES, DUBAI_PALETTE, max_samples)
