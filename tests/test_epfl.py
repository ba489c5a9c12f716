import numpy as np
import pytest
import tifffile
from PIL import Image

from kerasweak.data import EPFL_CLASSES, find_dataset, read_epfl, read_epfl_png, read_epfl_tiff
from kerasweak.errors import KerasweakError


def _slices(n=2, height=64, width=96, seed=0):
    """Grey slices with {0, 255} labels: a bright block of 'mitochondria' per slice."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, height, width), dtype=np.uint8)
    labels = np.zeros((n, height, width), np.uint8)
    for z in range(n):
        labels[z, 8 * z:8 * z + 20, 10:40] = 255
    return images, labels


def _write_tiff(root, images, labels):
    root.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(root / "training.tif", images)
    tifffile.imwrite(root / "training_groundtruth.tif", labels)
    return root


def _write_lucchi(root, images, labels, numbers=(0, 3)):
    base = root / "dataset" / "Lucchi++"
    (base / "Train_In").mkdir(parents=True)
    (base / "Train_Out").mkdir(parents=True)
    for number, image, label in zip(numbers, images, labels):
        Image.fromarray(image).save(base / "Train_In" / f"mask{number:04d}.png")
        Image.fromarray(label).save(base / "Train_Out" / f"{number}.png")
    return base


def _check_binary_patches(patches, images, labels, patch_size=32):
    per_slice = (images.shape[1] // patch_size) * (images.shape[2] // patch_size)
    assert len(patches) == len(images) * per_slice
    assert patches.images.shape == (len(patches), patch_size, patch_size, 1)
    assert patches.class_names == EPFL_CLASSES and set(np.unique(patches.masks)) == {0, 1}
    assert patches.proportions.shape == (len(patches), 1)
    np.testing.assert_allclose(patches.proportions[:, 0], patches.masks.mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_array_equal(patches.images[per_slice + 1, ..., 0], images[1, :32, 32:64])
    np.testing.assert_array_equal(patches.masks[per_slice + 1], labels[1, :32, 32:64] // 255)
    assert patches.origins[per_slice + 1] == (0, 32)


def test_tiff_stack_reader_on_a_small_stack(tmp_path):
    images, labels = _slices()
    root = _write_tiff(tmp_path / "epfl-em", images, labels)
    patches = read_epfl_tiff(root, patch_size=32)
    _check_binary_patches(patches, images, labels)
    assert patches.sources[:7] == ["training.tif[0]"] * 6 + ["training.tif[1]"]
    assert len(read_epfl(root, patch_size=32, max_samples=5)) == 5
    assert find_dataset("epfl-em", tmp_path) == root


def test_tiff_label_values_and_slice_counts_are_checked(tmp_path):
    images, labels = _slices()
    labels[1, 0, 0] = 128
    root = _write_tiff(tmp_path, images, labels)
    with pytest.raises(KerasweakError, match=r"training_groundtruth.tif: label value 128 \(1 pixels\) is not 0 or 255"):
        read_epfl_tiff(root, patch_size=32)
    _write_tiff(tmp_path, images, labels[:1])
    with pytest.raises(KerasweakError, match="1 label slices for 2 image slices"):
        read_epfl_tiff(root, patch_size=32)
    (root / "training.tif").write_bytes(b"not a tiff")
    with pytest.raises(KerasweakError, match="training.tif: cannot decode TIFF stack"):
        read_epfl_tiff(root, patch_size=32)


def test_lucchi_png_layout_reader(tmp_path):
    images, labels = _slices()
    base = _write_lucchi(tmp_path / "data" / "epfl-em", images, labels)
    assert find_dataset("epfl-em", tmp_path / "data") == base
    patches = read_epfl(base, patch_size=32)
    _check_binary_patches(patches, images, labels)
    assert patches.sources[0] == "Train_In/mask0000.png" and patches.sources[-1] == "Train_In/mask0003.png"


def test_lucchi_missing_label_and_small_slice_are_errors(tmp_path):
    images, labels = _slices()
    base = _write_lucchi(tmp_path, images, labels)
    with pytest.raises(KerasweakError, match="smaller than a 256x256 patch"):
        read_epfl_png(base)
    (base / "Train_Out" / "3.png").unlink()
    with pytest.raises(KerasweakError, match=r"3.png: label missing for image mask0003.png"):
        read_epfl_png(base, patch_size=32)


def test_real_epfl_em_gives_660_patches(shared_data):
    patches = read_epfl(find_dataset("epfl-em", shared_data))
    assert len(patches) == 660  # 55 slices x 12 patches of 256x256
    assert patches.images.shape == (660, 256, 256, 1) and patches.proportions.shape == (660, 1)
    assert set(np.unique(patches.masks)) == {0, 1}
    assert patches.proportions.mean() == pytest.approx(0.069, abs=0.005)  # PROVENANCE.md: mean 6.9% per slice
