"""The generic dataset folder: a user's own images with any kind of cheap label (registered as dataset "folder").

    DIR/dataset.toml     classes = [...]; optional colours = [[R, G, B], ...], ignore (index or colour), channels (1 or 3)
    DIR/images/          png, jpg/jpeg, tif/tiff (any letter case); 8-bit grey/RGB, 16-bit grey; EXIF orientation applied
    DIR/masks/           optional; same stem as the image; index PNG or colour PNG
    DIR/proportions.csv  optional; image,<class>,... (images without masks)
    DIR/keypoints.csv    optional; image,class,x,y in image pixels
    DIR/sizes.csv        optional; image,size (two classes)
    DIR/split.csv        optional; image,split (train/val/test); else a seeded split by image

Images with masks are cut into non-overlapping patches at native scale
(remainders dropped) and their patch proportions come from the masks; above
IN_MEMORY_BYTES of decoded patches they are LazyPatches, decoded when indexed
(kerasweak.data.folder_lazy).
Images without masks (proportions.csv only) are each one patch: scaled so the
longer side fits the patch, keeping the aspect, and zero-padded to it;
PatchSet.valid marks the padding, which SPSS leaves out of the pooled proportion,
and exports record this working scale (kerasweak.inference.working_scale).
Train, validation and test never share an image (PatchSet.split).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import KerasweakError
from .dataset import SPLIT_PARTS, PatchSet
from .folder_files import (decode_image, decode_mask, image_shape, list_images, mask_paths, read_folder_keypoints,
                           read_folder_proportions, read_folder_sizes, read_folder_split, read_spec,
                           unread_entries)
from .folder_lazy import IN_MEMORY_BYTES, check_patch_fits, decoded_bytes, patch_origins, read_lazy_patches
from .patching import patch_shape
from .proportions import proportions_from_masks


@dataclass
class FolderLabels:
    """A folder's dataset.toml and label files, read and checked (images not decoded)."""

    spec: object
    images: dict
    masks: dict | None
    proportions: dict | None
    keypoints: dict | None
    sizes: dict | None
    split: dict | None
    warnings: list = field(default_factory=list)

    @property
    def root(self):
        return self.spec.root


def read_labels(root, warnings=None):
    """The FolderLabels of DIR; `warnings` (a list) collects what is read with a warning."""
    root = Path(root)
    warnings = [] if warnings is None else warnings
    spec = read_spec(root)
    warnings += unread_entries(root)
    images = list_images(root, warnings)
    masks = mask_paths(root, images, warnings)
    if masks is not None:
        missing = [name for name in images if name not in masks]
        if missing:
            raise KerasweakError(f"no mask for image {missing[0]} ({len(missing)} of {len(images)} images have none; "
                                 "give every image a mask, or none)", root / "masks")

    def optional(name, reader, *args):
        return reader(root / name, *args) if (root / name).is_file() else None

    sizes_of = {}

    def shapes(name):
        if name not in sizes_of:
            sizes_of[name] = image_shape(images[name])
        return sizes_of[name]

    proportions = optional("proportions.csv", read_folder_proportions, spec, images, warnings)
    keypoints = optional("keypoints.csv", read_folder_keypoints, spec, images, shapes, warnings)
    sizes = optional("sizes.csv", read_folder_sizes, images, warnings)
    if sizes is not None and not spec.binary:
        raise KerasweakError(f"object sizes need two classes (background and object); dataset.toml names "
                             f"{len(spec.classes)}", root / "sizes.csv")
    split = optional("split.csv", read_folder_split, images, warnings)
    if masks is None and proportions is None:
        if keypoints is None and sizes is None:
            raise KerasweakError("no labels: add masks/, or proportions.csv (see docs/data.md)", root)
    elif masks is None:
        missing = [name for name in images if name not in proportions]
        if missing:
            raise KerasweakError(f"no proportions for image {missing[0]} ({len(missing)} of {len(images)} images have "
                                 "none) and no masks/", root / "proportions.csv")
    return FolderLabels(spec, images, masks, proportions, keypoints, sizes, split, warnings)


def image_parts(labels, data):
    """{image: "train" | "val" | "test"}: split.csv's, else a seeded split of the images by [data] fractions and seed.

    The seeded split is split_indices' over the images, except that a part with
    a fraction above 0 gets at least one image (a tiny folder is still scored).
    """
    if labels.split is not None:
        return dict(labels.split)
    names = list(labels.images)
    order = np.random.default_rng(data["split_seed"]).permutation(len(names))
    n_test = round(len(names) * data["test_fraction"]) or int(data["test_fraction"] > 0)
    n_val = round((len(names) - n_test) * data["val_fraction"]) or int(data["val_fraction"] > 0)
    if len(names) - n_test - n_val < 1:
        raise KerasweakError(f"{len(names)} images are too few to split into train, val and test images; add images or "
                             "a split.csv (the split is by image, so train, val and test never share one)",
                             labels.root / "images")
    parts = dict.fromkeys(names, "train")
    for i in order[:n_test]:
        parts[names[i]] = "test"
    for i in order[n_test:n_test + n_val]:
        parts[names[i]] = "val"
    return parts


def fitted_size(height, width, shape):
    """(scale, (height, width)) of an image scaled so its longer side fits `shape`, aspect kept."""
    scale = min(shape[0] / height, shape[1] / width)
    return scale, (max(1, round(height * scale)), max(1, round(width * scale)))


def resize_image(image, size):
    """(H, W, K) image resized to size = (height, width), by pixel-area averaging (cv2.INTER_AREA), K kept."""
    import cv2

    return cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA).reshape(*size, image.shape[-1])


def fit_whole_image(image, shape):
    """(patch, scale): the image scaled so its longer side fits `shape` (aspect kept), zero-padded bottom and right."""
    scale, size = fitted_size(*image.shape[:2], shape)
    return np.pad(resize_image(image, size), ((0, shape[0] - size[0]), (0, shape[1] - size[1]), (0, 0))), scale


def whole_image_validity(source_shape, shape):
    """(H, W) uint8 of `shape`: 1 where fit_whole_image puts an image of `source_shape`, 0 in its padding."""
    size = fitted_size(*source_shape, shape)[1]
    valid = np.zeros(shape, np.uint8)
    valid[:size[0], :size[1]] = 1
    return valid


def _point(x, y, class_index, binary):
    return (0, class_index) if binary else (class_index, 1)


def cut_image(labels, name, shape):
    """[(patch image, patch mask or None, origin, scale)] of one image, and its (height, width)."""
    spec = labels.spec
    image = decode_image(labels.images[name], spec.channels)
    height, width = image.shape[:2]
    if labels.masks is None:
        patch, scale = fit_whole_image(image, shape)
        return [(patch, None, (0, 0), scale)], (height, width)
    mask = decode_mask(labels.masks[name], spec, (height, width))
    check_patch_fits(height, width, shape, labels.images[name])
    return [(image[r:r + shape[0], c:c + shape[1]], mask[r:r + shape[0], c:c + shape[1]], (r, c), 1.0)
            for r, c in patch_origins(height, width, shape)], (height, width)


def patch_points(points, origin, scale, shape, binary):
    """(k, 4) int32 (row, col, channel, label) of the image points that fall on the patch at `origin`."""
    rows = []
    for x, y, class_index in points:
        row, col = int(y * scale) - origin[0], int(x * scale) - origin[1]
        if 0 <= row < shape[0] and 0 <= col < shape[1]:
            rows.append((row, col, *_point(x, y, class_index, binary)))
    return np.asarray(rows, dtype=np.int32).reshape(-1, 4)


def _quota(parts, max_samples):
    """Patches each split part keeps under max_samples: the parts' shares of it, at least one for each part that has patches."""
    counts = {part: int(np.sum(parts == part)) for part in SPLIT_PARTS}
    total = sum(counts.values())
    quota = {part: min(n, max(1, round(max_samples * n / total))) if n else 0 for part, n in counts.items()}
    quota["train"] = max(min(counts["train"], max_samples - quota["val"] - quota["test"]), min(1, counts["train"]))
    return quota


def read_folder(root, data, max_samples=None, labels=None, lazy=None):
    """The PatchSet of a generic folder under a recipe's [data] settings (see the module docstring).

    PatchSet.split holds each patch's part, by image. `max_samples` keeps the
    first patches of each part, in proportion, so a quick run is still scored on
    test images only. `lazy` (default: above IN_MEMORY_BYTES) reads a masked
    folder's images and masks as LazyPatches.
    """
    labels = labels or read_labels(root)
    shape = patch_shape(data["patch_size"])
    parts_of = image_parts(labels, data)
    if labels.masks is not None and (decoded_bytes(labels, shape) > IN_MEMORY_BYTES if lazy is None else lazy):
        patches = read_lazy_patches(labels, shape, parts_of)
        scales = [1.0] * len(patches)  # masked images are cut at native scale
    else:
        patches, scales = _read_in_memory(labels, shape, parts_of)
    if labels.keypoints is not None:
        patches.keypoints = [patch_points(labels.keypoints.get(name, []), origin, scale, shape, labels.spec.binary)
                             for name, origin, scale in zip(patches.sources, patches.origins, scales)]
    if max_samples and max_samples < len(patches):
        quota = _quota(patches.split, max_samples)
        keep = np.sort(np.concatenate([np.flatnonzero(patches.split == part)[:quota[part]] for part in SPLIT_PARTS]))
        patches = patches.subset(keep)
    patches.sizes = _sizes(labels, patches, shape)
    return patches


def _read_in_memory(labels, shape, parts_of):
    """(PatchSet with the patches as arrays, each patch's scale)."""
    spec = labels.spec
    images, masks, sources, origins, shapes, parts, scales = [], [], [], [], {}, [], []
    for name in labels.images:
        cut, shapes[name] = cut_image(labels, name, shape)
        for patch, mask, origin, scale in cut:
            images.append(patch)
            masks.append(mask)
            sources.append(name)
            origins.append(origin)
            parts.append(parts_of[name])
            scales.append(scale)
    parts = np.asarray(parts)
    if labels.masks is not None:
        mask_array = np.stack(masks)
        proportions = proportions_from_masks(mask_array, len(spec.classes))
    else:
        mask_array = None
        proportions = np.stack([labels.proportions[name] for name in sources])
    valid = None if labels.masks is not None else np.stack([whole_image_validity(shapes[name], shape) for name in sources])
    return PatchSet(np.stack(images), mask_array, proportions[:, 1:] if spec.binary else proportions, sources,
                    list(spec.classes), spec.colours, origins, shapes, split=parts, valid=valid), scales


def _sizes(labels, patches, shape):
    """Object sizes: sizes.csv's, else those of binary masks; else None.

    sizes.csv gives one size per image, so it is used only where every image is
    exactly one patch; otherwise the sizes are None and method sizes refuses to
    train (methods.sizes), while other methods train without them.
    """
    from .sizes import mask_sizes

    if labels.sizes is not None:
        if any((height, width) != shape for height, width in patches.source_shapes.values()):
            return None
        missing = [name for name in labels.images if name not in labels.sizes]
        if missing:
            raise KerasweakError(f"no size for image {missing[0]} ({len(missing)} of {len(labels.images)} images have none)",
                                 labels.root / "sizes.csv")
        return np.asarray([labels.sizes[name] for name in patches.sources], dtype=np.float32)
    if labels.spec.binary and patches.masks is not None:
        return mask_sizes(patches.masks)
    return None


def read_folder_dataset(root, data, max_samples=None):
    """The registry's reader of dataset "folder" (kerasweak.data.registry)."""
    return read_folder(root, data, max_samples)
