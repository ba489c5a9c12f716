"""Readers for the EPFL electron microscopy mitochondria data (CA1 hippocampus, 768×1024 slices).

Two layouts of the training stack:
- Lucchi++ per-slice PNGs: `Train_In/maskNNNN.png` (the images, despite the name)
  with labels `Train_Out/N.png`, values {0, 255};
- EPFL's original multi-page TIFF stacks `training.tif` and `training_groundtruth.tif`.

The task is binary, as in the paper: class_names are ["Background", "Mitochondria"]
and masks hold 0 or 1, but the model has one sigmoid output (n = 1), so
proportions are (N, 1): the mitochondria fraction of each patch alone; the
background fraction is 1 minus it. Rows therefore do not sum to 1, and the
proportion width, not len(class_names), is the number of model outputs.
"""

import re
from pathlib import Path

import numpy as np

from ..errors import KerasweakError
from .images import read_image
from .patching import patch_set_from_images

EPFL_CLASSES = ["Background", "Mitochondria"]
EPFL_PALETTE = np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)
LABEL_VALUES = (0, 255)
TIFF_IMAGES, TIFF_LABELS = "training.tif", "training_groundtruth.tif"


def _labels(array, path):
    """{0, 255} label image -> {0, 1} mask; anything else is an error naming the value."""
    bad = ~np.isin(array, LABEL_VALUES)
    if bad.any():
        raise KerasweakError(f"label value {array[bad][0]} ({int(bad.sum())} pixels) is not 0 or 255", path)
    return (array == 255).astype(np.uint8)


def _slice_number(path):
    found = re.findall(r"\d+", path.stem)
    return int(found[-1]) if found else None


def read_epfl_png(root, patch_size=256, max_samples=None):
    """Lucchi++ per-slice PNGs under root (Train_In/, Train_Out/): 12 patches per slice at 256."""
    root = Path(root)
    inputs = sorted((p for p in (root / "Train_In").glob("*.png") if _slice_number(p) is not None), key=_slice_number)
    if not inputs:
        raise KerasweakError("empty folder: no maskNNNN.png images", root / "Train_In")
    slices = []
    for image_path in inputs:
        label_path = root / "Train_Out" / f"{_slice_number(image_path)}.png"
        if not label_path.exists():
            raise KerasweakError(f"label missing for image {image_path.name}", label_path)
        labels = _labels(read_image(label_path, channels=1)[..., 0], label_path)
        slices.append((read_image(image_path, channels=1), labels, str(image_path.relative_to(root)), image_path))
    return patch_set_from_images(slices, patch_size, EPFL_CLASSES, EPFL_PALETTE, max_samples, binary=True)


def _read_stack(path):
    import tifffile

    try:
        stack = tifffile.imread(path)
    except FileNotFoundError:
        raise KerasweakError("file not found", path) from None
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise KerasweakError(f"cannot decode TIFF stack ({err})", path) from None
    if stack.dtype != np.uint8 or stack.ndim not in (2, 3):
        raise KerasweakError(f"expected an 8-bit grayscale stack, got {stack.dtype} of shape {stack.shape}", path)
    return stack[None] if stack.ndim == 2 else stack


def read_epfl_tiff(root, patch_size=256, max_samples=None):
    """EPFL's original stacks root/training.tif and root/training_groundtruth.tif: 1980 patches at 256."""
    root = Path(root)
    images, labels = _read_stack(root / TIFF_IMAGES), _read_stack(root / TIFF_LABELS)
    if len(images) != len(labels):
        raise KerasweakError(f"{len(labels)} label slices for {len(images)} image slices", root / TIFF_LABELS)
    slices = [(image[..., None], _labels(label, root / TIFF_LABELS), f"{TIFF_IMAGES}[{z}]", root / TIFF_IMAGES)
              for z, (image, label) in enumerate(zip(images, labels))]
    return patch_set_from_images(slices, patch_size, EPFL_CLASSES, EPFL_PALETTE, max_samples, binary=True)


def read_epfl(root, patch_size=256, max_samples=None):
    """Either layout: the TIFF stacks if root holds training.tif, else the Lucchi++ PNGs."""
    reader = read_epfl_tiff if (Path(root) / TIFF_IMAGES).exists() else read_epfl_png
    return reader(root, patch_size=patch_size, max_samples=max_samples)
