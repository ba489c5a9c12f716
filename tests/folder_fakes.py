"""Tiny generic dataset folders (kerasweak.data.folder) for the own-data tests: images, masks and label files."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = [[20, 20, 20], [200, 40, 40], [40, 200, 40]]


def block_labels(rng, height, width, classes, block=8):
    """(height, width) class indices in blocks of `block` pixels."""
    labels = rng.integers(0, classes, size=(height // block + 1, width // block + 1))
    return np.repeat(np.repeat(labels, block, 0), block, 1)[:height, :width].astype(np.uint8)


def write_folder(root, images=10, size=(40, 36), classes=("sky", "road", "car"), masks="index", colours=None,
                 channels=3, proportions=False, sizes=False, seed=0, suffix=".png", extra_toml=""):
    """A generic folder at `root`: `images` images of `size` (width, height), each class a block of its own brightness.

    masks: "index" (grey PNG of class indices), "colour" (RGB PNG in COLOURS, which
    dataset.toml then names) or None. proportions / sizes also write those CSVs
    (from the masks). Returns the folder.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True)
    lines = ["classes = [" + ", ".join(json.dumps(c) for c in classes) + "]"]
    if masks == "colour" or colours:
        lines.append(f"colours = {json.dumps(colours or COLOURS[:len(classes)])}")
    if channels == 1:
        lines.append("channels = 1")
    (root / "dataset.toml").write_text("\n".join(lines) + "\n" + extra_toml)
    if masks:
        (root / "masks").mkdir()
    width, height = size
    prop_rows, size_rows = [], []
    for i in range(images):
        labels = block_labels(rng, height, width, len(classes))
        grey = (40 + 180 * labels / max(1, len(classes) - 1) + rng.integers(-15, 15, labels.shape)).clip(0, 255).astype(np.uint8)
        picture = grey if channels == 1 else np.stack([grey, 255 - grey, grey // 2], axis=-1)
        name = f"img_{i:03d}"
        Image.fromarray(picture).save(root / "images" / f"{name}{suffix}")
        if masks == "index":
            Image.fromarray(labels).save(root / "masks" / f"{name}.png")
        elif masks == "colour":
            Image.fromarray(np.asarray(COLOURS, np.uint8)[labels]).save(root / "masks" / f"{name}.png")
        fractions = np.bincount(labels.ravel(), minlength=len(classes)) / labels.size
        prop_rows.append(f"{name}{suffix}," + ",".join(f"{f:.6f}" for f in fractions))
        size_rows.append(f"{name}{suffix},{2.0 * (1 + i % 5)}")
    if proportions:
        (root / "proportions.csv").write_text("image," + ",".join(classes) + "\n" + "\n".join(prop_rows) + "\n")
    if sizes:
        (root / "sizes.csv").write_text("image,size\n" + "\n".join(size_rows) + "\n")
    return root


def label_studio_export(root, points):
    """A Label Studio JSON export (KeyPointLabels, percent coordinates) of `points` {image name: [(x, y, class)]}."""
    tasks = []
    for task_id, (name, items) in enumerate(points.items(), start=1):
        width, height = Image.open(Path(root) / "images" / name).size
        result = [{"id": f"p{task_id}_{k}", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
                   "original_width": width, "original_height": height,
                   "value": {"x": 100.0 * x / width, "y": 100.0 * y / height, "width": 0.5, "keypointlabels": [label]}}
                  for k, (x, y, label) in enumerate(items)]
        tasks.append({"id": task_id, "data": {"image": f"/data/upload/1/1a2b3c4d-{name}"},
                      "annotations": [{"id": task_id, "result": result}]})
    path = Path(root).parent / "label-studio.json"
    path.write_text(json.dumps(tasks, indent=1))
    return path


def cvat_export(root, points):
    """A CVAT "for images 1.1" XML export of `points` {image name: [(x, y, class)]}."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>"]
    for i, (name, items) in enumerate(points.items()):
        width, height = Image.open(Path(root) / "images" / name).size
        lines.append(f'  <image id="{i}" name="{name}" width="{width}" height="{height}">')
        for x, y, label in items:
            lines.append(f'    <points label="{label}" occluded="0" source="manual" points="{x:.2f},{y:.2f}" z_order="0"/>')
        lines.append("  </image>")
    lines.append("</annotations>")
    path = Path(root).parent / "cvat.xml"
    path.write_text("\n".join(lines) + "\n")
    return path
