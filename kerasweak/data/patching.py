"""Patch sides of a recipe, and labelled images cut into the non-overlapping patches of a PatchSet (shared by every reader)."""

import numpy as np

from ..errors import KerasweakError
from .dataset import PatchSet
from .images import cut_patches
from .proportions import proportions_from_masks


def patch_shape(patch_size):
    """(height, width) of a recipe's [data] patch_size (a side, or [height, width])."""
    size = list(np.atleast_1d(patch_size))
    return (int(size[0]), int(size[-1]))


def check_patch_sides(patch_size, setting, why, where, at_least=1, multiple_of=1):
    """A one-line error unless both sides of [data] patch_size are >= `at_least` and multiples of `multiple_of`.

    `setting` names what asks for it and `why` says why, e.g. the U-Net's
    bottleneck mirrors 2 pixels, so reflect padding needs sides of 32.
    """
    sides = patch_shape(patch_size)
    if min(sides) < at_least or any(side % multiple_of for side in sides):
        need = " and ".join(part for part in (f"of at least {at_least}" if at_least > 1 else "",
                                             f"that are multiples of {multiple_of}" if multiple_of > 1 else "") if part)
        raise KerasweakError(f"{setting} needs patch sides {need} ({why}), got patch_size = {patch_size}", where)


def patch_set_from_images(items, patch_size, class_names, palette, max_samples=None, binary=False):
    """A PatchSet from (image, mask, source, path) items; remainders are dropped.

    `binary` keeps one proportion column (the foreground fraction) for a single
    sigmoid output; otherwise there is one column per class. A mask whose size
    differs from its image, or an image smaller than a patch, is an error naming `path`.
    """
    images, masks, sources, origins, source_shapes = [], [], [], [], {}
    for image, mask, source, path in items:
        if image.shape[:2] != mask.shape:
            raise KerasweakError(f"mask size {mask.shape[::-1]} differs from image size {image.shape[1::-1]}", path)
        if min(image.shape[:2]) < patch_size:
            raise KerasweakError(f"image {image.shape[1]}x{image.shape[0]} is smaller than a {patch_size}x{patch_size} patch", path)
        cols = image.shape[1] // patch_size
        source_shapes[source] = image.shape[:2]
        for k, (img, lab) in enumerate(zip(cut_patches(image, patch_size), cut_patches(mask, patch_size))):
            images.append(img)
            masks.append(lab)
            sources.append(source)
            origins.append(((k // cols) * patch_size, (k % cols) * patch_size))
    masks = np.stack(masks)
    proportions = proportions_from_masks(masks, len(class_names))
    patches = PatchSet(np.stack(images), masks, proportions[:, 1:] if binary else proportions,
                       sources, list(class_names), palette, origins, source_shapes)
    if max_samples:
        patches = patches.subset(np.arange(min(max_samples, len(patches))))
    return patches
