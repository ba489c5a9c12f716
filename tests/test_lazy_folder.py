"""A masked generic folder read lazily (LazyPatches) gives the in-memory path's patches, proportions, split, batches and scores."""

import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from folder_fakes import write_folder
from kerasweak.data.folder import read_folder
from kerasweak.data.lazy import LazyPatches
from kerasweak.data.pipeline import EpochCounter, make_dataset
from kerasweak.evaluation import evaluate_patches
from kerasweak.methods import get_method
from kerasweak.recipe import load_recipe

DATA = {"patch_size": 16, "test_fraction": 0.2, "val_fraction": 0.1, "split_seed": 0}


def _both(folder, data=DATA, max_samples=None):
    return (read_folder(folder, data, max_samples, lazy=False), read_folder(folder, data, max_samples, lazy=True))


def _assert_same(memory, lazy):
    assert isinstance(lazy.images, LazyPatches) and isinstance(lazy.masks, LazyPatches)
    assert lazy.images.shape == memory.images.shape and lazy.masks.shape == memory.masks.shape
    np.testing.assert_array_equal(np.asarray(lazy.images), memory.images)
    np.testing.assert_array_equal(np.asarray(lazy.masks), memory.masks)
    np.testing.assert_array_equal(lazy.proportions, memory.proportions)
    np.testing.assert_array_equal(lazy.split, memory.split)
    assert lazy.sources == memory.sources and lazy.origins == memory.origins
    assert lazy.source_shapes == memory.source_shapes


@pytest.mark.parametrize("masks", ["index", "colour"])
def test_lazy_folder_reads_the_in_memory_patches(tmp_path, masks):
    memory, lazy = _both(write_folder(tmp_path / "f", images=10, size=(52, 40), masks=masks))
    _assert_same(memory, lazy)
    _assert_same(*_both(tmp_path / "f", max_samples=7))


def test_binary_lazy_folder_has_the_same_sizes_and_scores(tmp_path):
    folder = write_folder(tmp_path / "f", images=8, size=(48, 32), classes=("background", "object"))
    memory, lazy = _both(folder)
    np.testing.assert_array_equal(lazy.sizes, memory.sizes)

    def predict(batch):
        brightness = np.asarray(batch, np.float32).mean(axis=-1, keepdims=True) / 255.0
        return np.concatenate([1 - brightness, brightness], axis=-1)

    assert evaluate_patches(predict, lazy, batch_size=5) == evaluate_patches(predict, memory, batch_size=5)


def test_lazy_patches_index_like_arrays(tmp_path):
    memory, lazy = _both(write_folder(tmp_path / "f", images=4, size=(48, 32)))
    images = lazy.images
    np.testing.assert_array_equal(images[3], memory.images[3])
    np.testing.assert_array_equal(images[-1], memory.images[-1])
    np.testing.assert_array_equal(images[2:9:3], memory.images[2:9:3])
    np.testing.assert_array_equal(images[[5, 0, 5]], memory.images[[5, 0, 5]])
    np.testing.assert_array_equal(images[np.arange(len(images)) % 2 == 0], memory.images[::2])
    assert images[[]].shape == (0, 16, 16, 3) and images.dtype == np.uint8 and len(images) == len(memory)
    np.testing.assert_array_equal(images[..., 0], memory.images[..., 0])
    converted = lazy.masks.astype("int32")
    assert isinstance(converted, LazyPatches) and converted[0].dtype == np.int32
    subset = lazy.subset([4, 1])
    assert isinstance(subset.images, LazyPatches)
    np.testing.assert_array_equal(np.asarray(subset.masks), memory.masks[[4, 1]])


def _batches(data):
    return [(np.asarray(x), np.asarray(y)) for x, y in data]


def test_lazy_folder_trains_on_the_same_batches(tmp_path):
    memory, lazy = _both(write_folder(tmp_path / "f", images=10, size=(52, 40)))
    recipe, pixel = load_recipe("dubai-spss"), get_method("pixel")
    for shuffle, with_epoch in ((True, True), (True, False), (False, False)):
        runs = []
        for patches in (memory, lazy):
            counter = EpochCounter()
            data = make_dataset(patches.images, pixel.targets(patches, recipe), batch_size=4, shuffle=shuffle, seed=3,
                                epoch=counter.epoch if with_epoch else None)
            epochs = []
            for epoch in range(2):
                counter.epoch.assign(epoch)
                epochs.append(_batches(data))
            runs.append(epochs)
        for memory_epoch, lazy_epoch in zip(*runs):
            assert len(memory_epoch) == len(lazy_epoch) == -(-len(memory) // 4)
            for (x, y), (lazy_x, lazy_y) in zip(memory_epoch, lazy_epoch):
                np.testing.assert_array_equal(lazy_x, x)
                np.testing.assert_array_equal(lazy_y, y)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(16, 60), height=st.integers(16, 60), patch=st.integers(5, 15), seed=st.integers(0, 9))
def test_lazy_and_in_memory_agree_for_any_image_and_patch_size(width, height, patch, seed):
    with tempfile.TemporaryDirectory() as folder:
        write_folder(f"{folder}/f", images=4, size=(width, height), seed=seed)
        _assert_same(*_both(f"{folder}/f", {**DATA, "patch_size": [patch, patch + 1]}))
