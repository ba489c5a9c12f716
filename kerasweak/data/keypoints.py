"""Semantic keypoints for SPSS+ (paper section 2.2): sampled from masks, or read from a file.

Both sources return (labels, weights), uint8 arrays of shape (N, H, W, C) for
losses.pack_keypoints: weights[..., j] = 1 marks the keypoint set Λ^{ij} of class
j, labels[..., j] its binary label there. C is the number of class-map channels.
With C > 1 a keypoint of class j is a positive (label 1) in channel j. With C = 1
(binary, one sigmoid channel) mask class 1 is positive and class 0 negative, and
both share channel 0 and its normaliser |Λ|.

Keypoint file (for users who clicked points and have no masks): CSV with a header
naming `image,class,x,y` (any order), or JSON, a list of {"image", "class", "x", "y"}
objects. x is the column and y the row, 0-based pixels; fractions are rounded down.
`kerasweak recipe --keypoints` reads one in whole-image pixels (read_patch_keypoints).
"""

import csv
import json
import math
from pathlib import Path

import numpy as np

from ..errors import KerasweakError

FIELDS = ("image", "class", "x", "y")


def _channel_and_label(class_index, num_classes):
    if num_classes == 1 and class_index not in (0, 1):
        raise ValueError(f"with one sigmoid channel the classes are 0 and 1, got class {class_index}")
    return (0, class_index) if num_classes == 1 else (class_index, 1)


def sample_keypoints(masks, num_classes, k, radius=0, classes=None, fraction_of_images=1.0, seed=0):
    """k random pixels of each class present in each (N, H, W) mask, as (labels, weights) for C = num_classes.

    k is one count for every class, or a {mask class index: count} mapping (a
    class it leaves out gets none); with one sigmoid channel, where both classes
    share a normaliser, more negatives than positives weigh the negatives more.
    Only `classes` (mask class indices; default all) of a random `fraction_of_images`
    of the images get keypoints. A radius > 0 dilates every point to a
    (2·radius + 1)² square, keeping only pixels of the point's class, as the
    paper's dilated keypoints. Ignored (unlabelled) pixels are never sampled.
    """
    import cv2

    masks = np.asarray(masks)
    rng = np.random.default_rng(seed)
    n = len(masks)
    labels = np.zeros(masks.shape + (num_classes,), dtype=np.uint8)
    weights = np.zeros_like(labels)
    if classes is None:
        classes = range(2 if num_classes == 1 else num_classes)
    chosen = np.sort(rng.choice(n, size=int(round(fraction_of_images * n)), replace=False))
    square = np.ones((2 * radius + 1, 2 * radius + 1), dtype=np.uint8)
    for i in chosen:
        for c in classes:
            channel, label = _channel_and_label(c, num_classes)
            count = k.get(c, 0) if isinstance(k, dict) else k
            where = np.flatnonzero(masks[i] == c)
            if not (len(where) and count):
                continue
            points = np.zeros(masks[i].size, dtype=np.uint8)
            points[rng.choice(where, size=min(count, len(where)), replace=False)] = 1
            points = points.reshape(masks[i].shape)
            if radius:
                points = cv2.dilate(points, square) & (masks[i] == c)
            weights[i, ..., channel] |= points
            labels[i, ..., channel] |= points * label
    return labels, weights


def _csv_rows(text, path):
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as err:
        raise KerasweakError(f"not a readable CSV file ({err})", path) from None
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if not set(FIELDS) <= set(header):
        raise KerasweakError("line 1: header must name the columns image, class, x, y", path)
    index = [header.index(name) for name in FIELDS]
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise KerasweakError(f"line {line}: {len(row)} values, expected {len(header)}", path)
        yield line, [row[j].strip() for j in index]


def _json_rows(text, path):
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as err:
        raise KerasweakError(f"line {err.lineno}: invalid JSON ({err.msg})", path) from None
    except RecursionError:
        raise KerasweakError("invalid JSON (nested too deeply)", path) from None
    if not isinstance(entries, list):
        raise KerasweakError('expected a JSON list of {"image", "class", "x", "y"} objects', path)
    decoder, position = json.JSONDecoder(), text.index("[") + 1
    for entry in entries:
        while text[position] in " \t\r\n,":
            position += 1
        line = text.count("\n", 0, position) + 1
        _, position = decoder.raw_decode(text, position)
        if not isinstance(entry, dict) or not set(FIELDS) <= set(entry):
            raise KerasweakError(f'line {line}: expected an object with "image", "class", "x" and "y"', path)
        yield line, [entry[name] for name in FIELDS]


def _read_points(path, image_names, image_shapes, class_names, num_classes):
    """[(image index, x, y, channel, label)] of a keypoint file, each point checked against its image's (height, width)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KerasweakError("keypoints file not found", path) from None
    except UnicodeDecodeError as err:
        raise KerasweakError(f"not a UTF-8 text file ({err})", path) from None
    images = {str(name): i for i, name in enumerate(image_names)}
    classes = {str(name): c for c, name in enumerate(class_names)}
    rows = _json_rows(text, path) if path.suffix.lower() == ".json" else _csv_rows(text, path)
    points = []
    for line, (image, name, x, y) in rows:
        if str(image) not in images:
            raise KerasweakError(f"line {line}: unknown image {image!r}", path)
        if str(name) not in classes:
            raise KerasweakError(f"line {line}: unknown class {name!r}; known: {', '.join(map(str, class_names))}", path)
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError, OverflowError):
            raise KerasweakError(f"line {line}: x and y must be numbers", path) from None
        i = images[str(image)]
        height, width = image_shapes[i]
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < width and 0 <= y < height):
            raise KerasweakError(f"line {line}: point ({x:g}, {y:g}) is outside the {width}x{height} image {image!r}", path)
        points.append((i, x, y, *_channel_and_label(classes[str(name)], num_classes)))
    return points


def read_keypoints_file(path, image_names, image_shapes, class_names, num_classes=None, out_shape=None):
    """(labels, weights) of shape (N, H, W, C) from a CSV or JSON keypoint file.

    image_names and image_shapes ((height, width) each) give the images in output
    order; class_names the class of each mask index. C = num_classes, default
    len(class_names); 1 for the binary sigmoid case (class 1 positive, class 0
    negative). Points land in arrays of out_shape (default the images' common
    shape), scaled from each image's own shape as the images are resized. A point
    outside its image, an unknown image or an unknown class is an error naming the
    file and line.
    """
    num_classes = num_classes or len(class_names)
    shapes = [tuple(int(s) for s in shape) for shape in image_shapes]
    points = _read_points(path, image_names, shapes, class_names, num_classes)
    if out_shape is None:
        if len(set(shapes)) > 1:
            raise ValueError("images differ in size; pass out_shape, the size they are resized to")
        out_shape = shapes[0]
    out_h, out_w = out_shape
    per_image = [[] for _ in image_names]
    for i, x, y, channel, label in points:
        height, width = shapes[i]
        per_image[i].append((int(y * out_h / height), int(x * out_w / width), channel, label))
    return keypoint_arrays([np.asarray(p, dtype=np.int32).reshape(-1, 4) for p in per_image], (out_h, out_w), num_classes)


def read_patch_keypoints(path, patches, num_classes):
    """The points of a keypoint file in whole-image pixels, moved onto the patches cut from those images.

    Image names are the readers' `patches.sources` (e.g. `training.tif[3]`,
    `Tile 1/images/image_part_001.jpg`), checked against the whole images'
    `patches.source_shapes`. A point at (x, y) lands on the patch of its image
    whose origin (oy, ox) is the patch-grid corner at or above-left of it, at
    pixel (y - oy, x - ox). Returns (points, skipped): points[i] is a (k, 4) int32
    array of (row, col, channel, label) in patch i, as keypoint_arrays takes them;
    skipped counts the points on no patch (in a remainder strip the cut drops,
    or on a patch left out by max_samples).
    """
    if not patches.source_shapes:
        raise KerasweakError("keypoints need patches cut from whole images (aerial-dubai or epfl-em data)", path)
    size = patches.images.shape[1]
    names = list(patches.source_shapes)
    patch_at = {(source, tuple(origin)): i for i, (source, origin) in enumerate(zip(patches.sources, patches.origins))}
    points, skipped = [[] for _ in range(len(patches))], 0
    for image, x, y, channel, label in _read_points(path, names, list(patches.source_shapes.values()),
                                                     patches.class_names, num_classes):
        row, col = int(y), int(x)
        i = patch_at.get((names[image], (row - row % size, col - col % size)))
        if i is None:
            skipped += 1
        else:
            points[i].append((row % size, col % size, channel, label))
    return [np.asarray(p, dtype=np.int32).reshape(-1, 4) for p in points], skipped


def keypoint_arrays(points, patch_shape, num_classes):
    """(labels, weights) of shape (N, H, W, C) for losses.pack_keypoints from read_patch_keypoints' per-patch points."""
    labels = np.zeros((len(points), *patch_shape, num_classes), dtype=np.uint8)
    weights = np.zeros_like(labels)
    for i, (row, col, channel, label) in enumerate(p.T for p in points):
        weights[i, row, col, channel] = 1
        labels[i, row, col, channel] = label
    return labels, weights
