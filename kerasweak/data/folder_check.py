"""`kerasweak check-data DIR`: every problem of a generic dataset folder, one line each, and a summary of what it holds.

Unlike the reader (kerasweak.data.folder), which stops at the first error,
the check goes on past a bad file, so one run lists every problem.
"""

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import KerasweakError
from .dataset import IGNORE_LABEL
from .folder import image_parts
from .folder_files import (decode_image, decode_mask, list_images, mask_paths, read_folder_keypoints,
                           read_folder_proportions, read_folder_sizes, read_folder_split, read_spec,
                           unread_entries)
from .proportions import few_bags_warning

DEFAULT_SPLIT = {"test_fraction": 0.2, "val_fraction": 0.1, "split_seed": 0}


class FolderCheck:
    """The outcome of check_folder: `errors` and `warnings` ("PATH: problem" lines) and `summary` lines."""

    def __init__(self):
        self.errors, self.warnings, self.summary = [], [], []

    def error(self, err):
        self.errors.append(str(err))


def _try(check, reader, *args):
    try:
        return reader(*args)
    except KerasweakError as err:
        check.error(err)
        return None


def _percentages(counts, classes):
    total = max(1, sum(counts))
    return ", ".join(f"{name} {100 * c / total:.1f}%" for name, c in zip(classes, counts))


def check_folder(root, split_settings=None):
    """A FolderCheck of DIR: errors (what stops training), warnings (what is dropped or doubled) and a summary."""
    root, check = Path(root), FolderCheck()
    if not root.is_dir():
        check.error(KerasweakError("data folder does not exist", root))
        return check
    spec = _try(check, read_spec, root)
    images = _try(check, list_images, root, check.warnings) if (root / "images").exists() or spec else None
    if spec is None or images is None:
        return check
    masks = _try(check, mask_paths, root, images, check.warnings)
    shapes, digests, mask_counts = {}, {}, np.zeros(len(spec.classes), np.int64)
    for name, path in images.items():
        image = _try(check, decode_image, path, spec.channels)
        if image is None:
            continue
        shapes[name] = image.shape[:2]
        digest = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()
        if digest in digests:
            check.warnings.append(f"{path}: the same image content as {digests[digest]} (a copy trains and is scored twice)")
        digests.setdefault(digest, path.name)
        if masks is not None:
            if name not in masks:
                check.error(KerasweakError(f"no mask for image {name} (give every image a mask, or none)", root / "masks"))
                continue
            labels = _try(check, decode_mask, masks[name], spec, image.shape[:2])
            if labels is not None:
                mask_counts += np.bincount(labels[labels != IGNORE_LABEL].ravel(), minlength=len(spec.classes))[:len(spec.classes)]

    def optional(file, reader, *args):
        return _try(check, reader, root / file, *args) if (root / file).is_file() else None

    def shape_of(name):
        if name not in shapes:
            raise KerasweakError(f"image {name} could not be read", root / "images")
        return shapes[name]

    proportions = optional("proportions.csv", read_folder_proportions, spec, images, check.warnings)
    keypoints = optional("keypoints.csv", read_folder_keypoints, spec, images, shape_of, check.warnings)
    sizes = optional("sizes.csv", read_folder_sizes, images, check.warnings)
    split = optional("split.csv", read_folder_split, images, check.warnings)
    check.warnings += unread_entries(root)
    if masks is None and proportions is None and keypoints is None and sizes is None:
        check.error(KerasweakError("no labels: add masks/, or proportions.csv (see docs/data.md)", root))
    if sizes is not None and not spec.binary:
        check.error(KerasweakError(f"object sizes need two classes; dataset.toml names {len(spec.classes)}",
                                   root / "sizes.csv"))
    _summarise(check, root, spec, images, shapes, masks, mask_counts, proportions, keypoints, sizes, split, split_settings)
    return check


def _summarise(check, root, spec, images, shapes, masks, mask_counts, proportions, keypoints, sizes, split, split_settings):
    lines = check.summary
    lines.append(f"{root}: {len(images)} images, {len(spec.classes)} classes ({', '.join(spec.classes)}), "
                 f"{spec.channels} channel{'s' if spec.channels > 1 else ''}")
    by_size = Counter(f"{w}x{h}" for h, w in shapes.values())
    lines.append("image sizes: " + ", ".join(f"{size} ({n})" for size, n in by_size.most_common()))
    kinds = {"masks": masks, "proportions": proportions, "keypoints": keypoints, "sizes": sizes}
    lines.append("labels: " + ", ".join(f"{kind} {sum(1 for n in images if n in found)}/{len(images)} images"
                                        for kind, found in kinds.items() if found is not None))
    if keypoints:
        lines.append(f"keypoints: {sum(len(p) for p in keypoints.values())} points on {len(keypoints)} images")
    if masks is not None and mask_counts.sum():
        lines.append("class frequencies (masks, labelled pixels): " + _percentages(mask_counts, spec.classes))
    if proportions:
        lines.append("class frequencies (proportions.csv, mean): "
                     + _percentages(np.mean(list(proportions.values()), axis=0), spec.classes))
    if split is not None:
        parts = split
        source = "split.csv"
    else:
        settings = split_settings or DEFAULT_SPLIT
        from .folder import FolderLabels

        try:
            parts = image_parts(FolderLabels(spec, images, masks, proportions, keypoints, sizes, None), settings)
        except KerasweakError as err:
            check.error(err)
            return
        source = f"none given: seeded by image (test {settings['test_fraction']}, val {settings['val_fraction']}, " \
                 f"seed {settings['split_seed']})"
    counts = Counter(parts.values())
    lines.append(f"split ({source}): train {counts['train']}, val {counts['val']}, test {counts['test']} images")
    warning = few_bags_warning(counts["train"], "training images") if masks is not None or proportions else None
    if warning:
        check.warnings.append(f"{root}: {warning}")
