"""Reader for MSD Task04 Hippocampus (MRI, NIfTI): 48×32 slices with binary masks and object sizes.

As in "Learning to segment from object sizes" (section 4):
- every labelled volume `imagesTr/X.nii.gz` / `labelsTr/X.nii.gz` is cut along its
  third axis; slice z is `volume[:, :, z].T`, so image rows run along the second
  volume axis (40-59 voxels) and columns along the first (31-43 voxels), the
  orientation that 48×32 crops least;
- each slice is centre-cropped or zero-padded (padding split evenly, the odd pixel
  after) to 48 rows × 32 columns; padding is background with intensity 0;
- labels 1 (anterior) and 2 (posterior) are merged into one Hippocampus class;
- slices whose 48×32 mask is less than 1% foreground are dropped.

MRI intensities have no fixed range, so each volume is rescaled linearly from its
own minimum and maximum to 0-255 and rounded to uint8 (a constant volume becomes 0).
Sizes are the object sizes of the masks (`kerasweak.ops.object_size`).
"""

from pathlib import Path

import numpy as np

from ..errors import KerasweakError
from .dataset import PatchSet, split_indices
from .proportions import proportions_from_masks
from .sizes import mask_sizes

HIPPOCAMPUS_CLASSES = ["Background", "Hippocampus"]
HIPPOCAMPUS_PALETTE = np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)
SLICE_SHAPE = (48, 32)
MIN_FOREGROUND = 0.01
LABEL_VALUES = (0, 1, 2)


def _load(path):
    import nibabel

    try:
        return np.asarray(nibabel.load(path).get_fdata(dtype=np.float32))
    except FileNotFoundError:
        raise KerasweakError("file not found", path) from None
    except (nibabel.filebasedimages.ImageFileError, OSError, EOFError, ValueError) as err:
        raise KerasweakError(f"cannot read NIfTI volume ({err})", path) from None


def _to_uint8(volume):
    """Linear per-volume rescale of MRI intensities to 0-255."""
    low, high = float(volume.min()), float(volume.max())
    scaled = (volume - low) * (255.0 / (high - low)) if high > low else np.zeros_like(volume)
    return np.round(scaled).astype(np.uint8)


def _fit(array, shape):
    """Centre-crop or zero-pad the last two axes of `array` to `shape`."""
    for axis, target in zip((-2, -1), shape):
        excess = array.shape[axis] - target
        if excess > 0:
            array = np.take(array, np.arange(excess // 2, excess // 2 + target), axis=axis)
        elif excess < 0:
            pad = [(0, 0)] * array.ndim
            pad[axis] = (-excess // 2, -excess - (-excess // 2))
            array = np.pad(array, pad)
    return array


def _slices(image_path, label_path):
    """(images, masks, z) of one volume's kept slices, each (Z, 48, 32)."""
    volume, labels = _load(image_path), _load(label_path)
    if volume.ndim != 3 or volume.shape != labels.shape:
        raise KerasweakError(f"label volume {labels.shape} does not match image volume {volume.shape}", label_path)
    bad = ~np.isin(labels, LABEL_VALUES)
    if bad.any():
        raise KerasweakError(f"label value {labels[bad][0]:g} ({int(bad.sum())} voxels) is not 0, 1 or 2", label_path)
    images = _fit(np.transpose(_to_uint8(volume), (2, 1, 0)), SLICE_SHAPE)
    masks = _fit(np.transpose(labels > 0, (2, 1, 0)), SLICE_SHAPE).astype(np.uint8)
    keep = np.flatnonzero(masks.mean(axis=(1, 2)) >= MIN_FOREGROUND)
    return images[keep], masks[keep], keep


def read_hippocampus(root, patch_size=SLICE_SHAPE, max_samples=None):
    """A PatchSet of the labelled volumes under root (imagesTr/, labelsTr/), with sizes.

    Images are (N, 48, 32, 1) uint8, masks (N, 48, 32) in {0, 1}, proportions the
    (N, 1) hippocampus fraction (one sigmoid output), sources "imagesTr/X.nii.gz[z=K]",
    sizes (N,) float32 from the masks. Volumes are read in file-name order. The
    slice shape is fixed; `patch_size` is accepted (from a recipe) and must be 48×32.
    """
    root = Path(root)
    if tuple(np.atleast_1d(patch_size)) != SLICE_SHAPE:
        raise KerasweakError(f"hippocampus slices are {SLICE_SHAPE[0]}×{SLICE_SHAPE[1]}, the recipe asks for {patch_size}", root)
    image_paths = sorted((root / "imagesTr").glob("*.nii.gz"))
    if not image_paths:
        raise KerasweakError("empty folder: no .nii.gz volumes", root / "imagesTr")
    images, masks, sources = [], [], []
    for image_path in image_paths:
        volume_images, volume_masks, kept = _slices(image_path, root / "labelsTr" / image_path.name)
        images.append(volume_images)
        masks.append(volume_masks)
        sources += [f"imagesTr/{image_path.name}[z={z}]" for z in kept]
    masks = np.concatenate(masks)
    patches = PatchSet(np.concatenate(images)[..., None], masks, proportions_from_masks(masks, 2)[:, 1:],
                       sources, list(HIPPOCAMPUS_CLASSES), HIPPOCAMPUS_PALETTE)
    if max_samples:
        patches = patches.subset(np.arange(min(max_samples, len(patches))))
    patches.sizes = mask_sizes(patches.masks)
    return patches


def split_hippocampus(n, seed=0):
    """The paper's random 70/10/20 (train, val, test) split of n slices, as index arrays.

    Slices are split individually, as in the paper, so one volume's slices may
    fall into different parts.
    """
    return split_indices(n, test_fraction=0.2, val_fraction=0.125, seed=seed)  # 12.5% of the remaining 80% = 10%
