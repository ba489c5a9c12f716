"""What the test modules share: the `kerasweak` command in a subprocess, fake datasets, tiny recipes, score checks.

Test modules import these with `from helpers import ...` (pytest puts tests/ on
sys.path; tests/two_replica_runs.py adds it itself). tests/conftest.py wraps
some of them in fixtures and holds nothing else.
"""

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasweak.data import DUBAI_PALETTE

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ENTRY_POINT = Path(sys.executable).parent / "kerasweak"


# ----------------------------------------------------------------------------- the kerasweak command

def kerasweak(*args, cwd=None):
    """Run the installed `kerasweak` entry point (outside the source tree, so the install is what runs)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERASWEAK_DATA": "/nonexistent"}
    return subprocess.run([str(ENTRY_POINT), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or tempfile.gettempdir(), env=env, timeout=600)


def assert_clean_error(result, *fragments):
    """Non-zero exit, one line on stderr naming the problem, no traceback."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# ----------------------------------------------------------------------------- tiny recipes

# The tiny recipe every training test starts from: 32-pixel patches, a 2-filter U-Net, 2 epochs of batch 4, float32.
TINY_SECTIONS = {
    "data": {"patch_size": 32},
    "model": {"base_filters": 2},
    "train": {"epochs": 2, "batch_size": 4, "patience": 2, "mixed_precision": False},
}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key):
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value):
    """A TOML value: booleans, numbers, strings, arrays and inline tables (all a recipe needs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def recipe_toml(**sections):
    """TOML text of TINY_SECTIONS updated by `sections` (see write_recipe); no `extends` or `name` of its own."""
    merged = {name: dict(keys) for name, keys in TINY_SECTIONS.items()}
    top = {}
    for key, value in sections.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            section = merged.setdefault(key, {})
            for name, setting in value.items():
                if setting is None:
                    section.pop(name, None)
                else:
                    section[name] = setting
        else:
            top[key] = value
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in top.items()]
    for name, keys in merged.items():
        lines += [f"[{name}]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in keys.items())]
    return "\n".join(lines) + "\n"


def write_recipe(path, extends="dubai-spss", name=None, **sections):
    """Write a tiny valid recipe to `path` (named after the file unless `name`), extending `extends`; return the path.

    `sections` are the recipe's: a dict updates that [section] of TINY_SECTIONS
    key by key (or adds it), anything else is a top-level key (`method`, ...).
    None leaves a section or a key out, so the extended recipe's own stays:
    `write_recipe(p, "hippocampus-size", data=None, train={"batch_size": 8})`.
    """
    path = Path(path)
    path.write_text(recipe_toml(extends=extends, name=name or path.stem, **sections))
    return path


def write_sweep(path, kind, values):
    """A tiny one-epoch sweep of `values` over dubai-spss-`kind` (noise, clusters), named tiny-sweep."""
    return write_recipe(path, extends=f"dubai-spss-{kind}", name="tiny-sweep", train={"epochs": 1}, sweep={"values": values})


def row_values(table):
    """The first cell of each row of a results.md's first table: the swept values it holds."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = itertools.takewhile(lambda line: line.startswith("|"), lines[start + 2:])
    return [row.split(" | ")[0][2:] for row in rows]


# tiny one-epoch runs of the SEMEDA comparison recipes (conftest's edge_runs), each with [semeda] edge_epochs = 1:
# recipe: (sections over it, --seeds). Sobel weight 2, SEMEDA λ = 2, 1, 0.5 and 2 seeds, and two λ settings swept,
# so tests can tell the recipe's settings from the defaults.
EDGE_RUNS = {
    "dubai-ppce": ({}, 1),
    "dubai-sobel": ({"sobel": {"weight": 2}}, 1),
    "dubai-semeda": ({"semeda": {"edge_epochs": 1, "lambdas": [2, 1, 0.5]}}, 2),
    "dubai-semeda-lambdas": ({"semeda": {"edge_epochs": 1}, "sweep": {"values": [[0, 0, 0], [4, 2, 0]]}}, 1),
}


# ----------------------------------------------------------------------------- fake datasets

def write_fake_dubai(root, tiles=2, images_per_tile=2, size=(96, 72), palette_masks=True, seed=0):
    """A small Aerial Dubai tree in the Kaggle layout, classes as coloured blocks.

    Tile 2's masks are palette PNGs, like the real release; one mask has black pixels.
    """
    rng = np.random.default_rng(seed)
    root = Path(root) / "Semantic segmentation dataset"
    width, height = size
    for t in range(1, tiles + 1):
        (root / f"Tile {t}" / "images").mkdir(parents=True)
        (root / f"Tile {t}" / "masks").mkdir(parents=True)
        for i in range(1, images_per_tile + 1):
            labels = np.repeat(np.repeat(rng.integers(0, 6, size=(height // 8 + 1, width // 8 + 1)), 8, 0), 8, 1)[:height, :width]
            rgb = DUBAI_PALETTE[labels]
            if t == 1 and i == 1:
                rgb[:4, :4] = 0  # black, unlabelled pixels
            image = np.clip(rgb.astype(int) + rng.integers(-10, 10, rgb.shape), 0, 255).astype(np.uint8)
            name = f"image_part_{i:03d}"
            Image.fromarray(image).save(root / f"Tile {t}" / "images" / f"{name}.jpg", quality=95)
            mask = Image.fromarray(rgb)
            if palette_masks and t == 2:
                mask = mask.quantize(colors=8, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            mask.save(root / f"Tile {t}" / "masks" / f"{name}.png")
    return root


def write_fake_epfl(root):
    """EPFL's TIFF-stack layout in `root`: four 64x64 grey slices, each with a bright 'mitochondrion' block."""
    import tifffile

    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, (4, 64, 64), dtype=np.uint8)
    labels = np.zeros_like(images)
    for z in range(4):
        labels[z, 6 * z:6 * z + 20, 10:30] = 255
    images[labels == 255] += 120
    root = Path(root)
    root.mkdir(parents=True)
    tifffile.imwrite(root / "training.tif", images)
    tifffile.imwrite(root / "training_groundtruth.tif", labels)
    return root


def write_fake_hippocampus(root, volumes=3, depth=6, seed=0):
    """MSD Task04 layout: `volumes` NIfTI volumes of 36×52×depth, one random block of labels 1/2 per slice."""
    import nibabel

    rng = np.random.default_rng(seed)
    root = Path(root)
    for v in range(volumes):
        labels = np.zeros((36, 52, depth), np.uint8)
        for z in range(depth):
            x, y = rng.integers(4, 14), rng.integers(4, 20)
            w, h = rng.integers(3, 12), rng.integers(3, 16)
            labels[x:x + w, y:y + h, z] = rng.integers(1, 3)
        image = (labels * 100 + rng.normal(0, 20, labels.shape)).astype(np.float32)
        for folder, array in (("imagesTr", image), ("labelsTr", labels)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            nibabel.save(nibabel.Nifti1Image(array, np.eye(4)), root / folder / f"hippocampus_{v:03d}.nii.gz")
    return root


def held_out_masks(patches, test_fraction=0.2, val_fraction=0.1, split_seed=0):
    """The masks of the test part of `patches` under a recipe's [data] split (kerasweak.data.split_indices).

    The defaults are the Aerial Dubai recipes'; the hippocampus recipes hold out val_fraction 0.125.
    """
    from kerasweak.data import split_indices

    return patches.masks[split_indices(len(patches), test_fraction, val_fraction, split_seed)[2]]


# ----------------------------------------------------------------------------- checks of reported scores

def assert_scores_match_confusion(metrics, test_masks=None, prefix=""):
    """A seed's reported scores are scikit-learn's on the pixels its confusion matrix counts.

    mIoU, pixel accuracy and per-class IoU and F1 (and mIoU without Unlabeled where
    reported) are recomputed with scikit-learn from the (true, predicted) pairs the
    matrix counts; with `test_masks`, the matrix's rows must count exactly their
    labelled pixels, class by class (255 is unlabelled). `prefix` picks the scores
    of an earlier stage ("before_self_train_", "pretrain_").
    """
    from sklearn.metrics import accuracy_score, f1_score, jaccard_score

    matrix = np.asarray(metrics[prefix + "confusion_matrix"], dtype=np.int64)
    classes = len(matrix)
    names = list(metrics[prefix + "iou"])
    assert len(names) == classes and matrix.sum() > 0
    if test_masks is not None:
        labelled = np.asarray(test_masks)[np.asarray(test_masks) != 255]
        np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(labelled, minlength=classes))
    truth = np.repeat(np.repeat(np.arange(classes), classes), matrix.ravel())
    predicted = np.repeat(np.tile(np.arange(classes), classes), matrix.ravel())
    labels = list(range(classes))
    iou = jaccard_score(truth, predicted, labels=labels, average=None, zero_division=0)
    f1 = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    assert metrics[prefix + "miou"] == pytest.approx(iou.mean(), abs=1e-12)
    assert metrics[prefix + "accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    assert [metrics[prefix + "iou"][c] for c in names] == pytest.approx(iou.tolist(), abs=1e-12)
    assert [metrics[prefix + "f1"][c] for c in names] == pytest.approx(f1.tolist(), abs=1e-12)
    if "Unlabeled" in names:
        kept = [i for i, c in enumerate(names) if c != "Unlabeled"]
        assert metrics[f"{prefix}miou_{len(kept)}"] == pytest.approx(iou[kept].mean(), abs=1e-12)


def assert_summary_of_seeds(results, keys=("miou", "accuracy")):
    """results.json's summary of each of `keys` is the mean and (population) std of its per-seed values."""
    for key in keys:
        values = [seed[key] for seed in results["per_seed"]]
        summary = results["summary"][key]
        assert summary["values"] == pytest.approx(values, abs=1e-12)
        assert summary["mean"] == pytest.approx(np.mean(values), abs=1e-12)
        assert summary["std"] == pytest.approx(np.std(values), abs=1e-12)
