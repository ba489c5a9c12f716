"""Class proportions: computed from masks, or read from a user's CSV file.

CSV format (for users with no masks): a header `image,<class 1>,...,<class C>`,
then one row per image: its path (relative to the CSV file) and its proportions.
"""

import csv
import math
import os
from pathlib import Path

import numpy as np

from ..errors import KerasweakError
from .dataset import IGNORE_LABEL, PatchSet
from .images import read_image

SUM_TOLERANCE = 1e-2
FEW_BAGS = 5  # results/dubai-spss-learning-curve: SPSS on 3 Aerial Dubai patches learnt a one-class map, on 5 more


def few_bags_warning(count, unit="training patches"):
    """A warning line when SPSS would learn from fewer than FEW_BAGS proportion vectors (one per patch or image), else None.

    Proportions label whole patches, so a small dataset is a handful of labels;
    FEW_BAGS is where SPSS's learning curve on Aerial Dubai stopped beating a map
    of the most frequent class (results/dubai-spss-learning-curve).
    """
    if count >= FEW_BAGS:
        return None
    return (f"{count} {unit} give SPSS {count} proportion vectors (one each); on Aerial Dubai it needed {FEW_BAGS} "
            "to beat a map of the most frequent class (more images, or smaller patches, give more; docs/protocol.md)")


def proportions_from_masks(masks, num_classes, ignore_label=IGNORE_LABEL):
    """(N, C) fraction of each class among each mask's labelled pixels.

    Ignored pixels are left out of the denominator; an all-ignored mask gets
    uniform proportions.
    """
    masks = np.asarray(masks).reshape(len(masks), -1)
    counts = np.stack([(masks == c).sum(axis=1) for c in range(num_classes)], axis=1).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / num_classes)
    return np.where(totals > 0, counts / np.maximum(totals, 1), uniform).astype(np.float32)


def check_proportion_row(props, line, path):
    """Raise the one-line error of a proportion row that is not finite, has a negative value or does not sum to 1."""
    if not all(math.isfinite(p) for p in props):
        raise KerasweakError(f"line {line}: proportions must be finite (found NaN or inf)", path)
    if any(p < 0 for p in props):
        raise KerasweakError(f"line {line}: proportions must not be negative", path)
    if abs(sum(props) - 1.0) > SUM_TOLERANCE:
        raise KerasweakError(f"line {line}: proportions sum to {sum(props):.4f}, not 1", path)


def read_proportions_csv(path, class_names=None):
    """Return (image paths, (N, C) float32 proportions, class names) from a CSV.

    The header names at least two classes (a first row naming a file and then
    numbers is data, not a header); rows must have one value per class, be
    finite, non-negative and sum to 1 within 0.01; an image listed twice must
    have the same proportions (the repeat is dropped). Each violation is an
    error naming the file and the row.
    """
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise KerasweakError("proportions file not found", path) from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise KerasweakError(f"not a readable CSV file ({err})", path) from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise KerasweakError("no proportion rows: expected a header 'image,<class>,...' and one row per image", path)
    header = [cell.strip() for cell in rows[0]]
    names = header[1:]
    if names and all(_is_number(name) for name in names) and (Path(header[0]).suffix or (path.parent / header[0]).is_file()):
        raise KerasweakError(f"line 1 is data ({','.join(header)}), not a header: the first line must be "
                             "'image,<class 1>,...,<class C>'", path)
    if class_names is not None and len(names) != len(class_names):
        raise KerasweakError(f"header has {len(names)} classes, expected {len(class_names)} ({', '.join(class_names)})", path)
    if len(names) < 2:
        raise KerasweakError(f"header must name at least 2 classes after 'image', found {len(names)}", path)
    images, values, seen = [], [], {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise KerasweakError(f"line {line}: {len(row) - 1} proportions, expected {len(names)}", path)
        try:
            props = [float(cell) for cell in row[1:]]
        except ValueError:
            raise KerasweakError(f"line {line}: proportions must be numbers", path) from None
        check_proportion_row(props, line, path)
        image = Path(os.path.normpath(path.parent / row[0].strip()))
        if image in seen:
            earlier_line, earlier = seen[image]
            if earlier != props:
                raise KerasweakError(f"line {line}: {row[0].strip()} is listed again with other proportions "
                                     f"(line {earlier_line})", path)
            continue
        seen[image] = (line, props)
        images.append(image)
        values.append(props)
    return images, np.asarray(values, dtype=np.float32), names


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_proportions_dataset(csv_path, patch_size=224, channels=3, palette=None):
    """A mask-free PatchSet from a proportions CSV.

    Each image is resized to patch_size²: proportions are area fractions, which
    resizing keeps. An image smaller than a patch is an error.
    """
    import cv2

    paths, props, names = read_proportions_csv(csv_path)
    images = []
    for image_path in paths:
        image = read_image(image_path, channels=channels)
        if min(image.shape[:2]) < patch_size:
            raise KerasweakError(f"image {image.shape[1]}x{image.shape[0]} is smaller than a {patch_size}x{patch_size} patch", image_path)
        resized = cv2.resize(image, (patch_size, patch_size), interpolation=cv2.INTER_AREA)
        images.append(resized.reshape(patch_size, patch_size, channels))
    if palette is None:
        palette = _default_palette(len(names))
    return PatchSet(np.stack(images), None, props, [str(p) for p in paths], names, palette)


def _default_palette(num_classes):
    import matplotlib

    colours = matplotlib.colormaps["tab10"](np.arange(num_classes) % 10)[:, :3]
    return (colours * 255).astype(np.uint8)
