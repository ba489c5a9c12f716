"""A masked generic folder too large for memory, read as LazyPatches (kerasweak.data.lazy).

read_folder (kerasweak.data.folder) keeps a folder's patches in memory while
its decoded patches (images and masks) take at most IN_MEMORY_BYTES; above,
each image and mask is decoded once here, to check it and to compute its
patches' proportions, and then dropped: the PatchSet's images and masks
decode their patches again when indexed. Both give the same patches, in the
same order, with the same proportions and split.
"""

from functools import partial

import numpy as np

from ..errors import KerasweakError
from .dataset import PatchSet
from .folder_files import decode_image, decode_mask, image_shape
from .lazy import LazyPatches
from .proportions import proportions_from_masks

IN_MEMORY_BYTES = 2 ** 29
"""Decoded patch bytes (images and masks) up to which a masked folder is held in memory.

The in-memory path peaks at about 5.5 times its data (0.59 GiB of patches: 3.2 GiB
peak RSS; lazily, 2,000 images of 1024²: 1.3 GiB; docs/benchmarks.md), so 512 MiB
stays under 3 GB. Below it a folder trains a little faster (converted Aerial
Dubai, 0.31 GiB: 64-68 s an epoch streamed, 57 s in memory, on the 2-core CPU),
since streaming decodes every patch's image again in every epoch."""


def patch_origins(height, width, shape):
    """(row, col) of the non-overlapping `shape` patches of a height × width image, row by row (remainders dropped)."""
    return [(r, c) for r in range(0, height - shape[0] + 1, shape[0]) for c in range(0, width - shape[1] + 1, shape[1])]


def check_patch_fits(height, width, shape, path):
    """Refuse an image smaller than one patch."""
    if height < shape[0] or width < shape[1]:
        raise KerasweakError(f"image {width}x{height} is smaller than a {shape[1]}x{shape[0]} patch", path)


def decoded_bytes(labels, shape):
    """Bytes the folder's patches and their masks take decoded, from the image headers alone."""
    per_pixel = labels.spec.channels + 1
    return sum(len(patch_origins(*image_shape(path), shape)) * shape[0] * shape[1] * per_pixel
               for path in labels.images.values())


def _mask_of(labels, shapes, name):
    return decode_mask(labels.masks[name], labels.spec, shapes[name])


def read_lazy_patches(labels, shape, parts_of):
    """The PatchSet of a masked folder with LazyPatches images and masks; each file decoded once here, none kept."""
    spec = labels.spec
    sources, origins, parts, proportions, shapes = [], [], [], [], {}
    for name, path in labels.images.items():
        shapes[name] = decode_image(path, spec.channels).shape[:2]
        mask = _mask_of(labels, shapes, name)
        check_patch_fits(*shapes[name], shape, path)
        image_origins = patch_origins(*shapes[name], shape)
        cut = np.stack([mask[r:r + shape[0], c:c + shape[1]] for r, c in image_origins])
        proportions.append(proportions_from_masks(cut, len(spec.classes)))
        sources += [name] * len(image_origins)
        origins += image_origins
        parts += [parts_of[name]] * len(image_origins)
    proportions = np.concatenate(proportions)
    images = LazyPatches(partial(decode_image, channels=spec.channels), [labels.images[name] for name in sources], origins,
                         shape, spec.channels)
    masks = LazyPatches(partial(_mask_of, labels, shapes), sources, origins, shape)
    return PatchSet(images, masks, proportions[:, 1:] if spec.binary else proportions, sources, list(spec.classes),
                    spec.colours, origins, shapes, split=np.asarray(parts))
