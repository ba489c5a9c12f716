import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from kerasweak.data import (DUBAI_CLASSES, IGNORE_LABEL, find_dataset, make_dataset, proportions_from_masks,
                            read_dubai, read_image, read_proportions_csv, read_proportions_dataset, split_indices)
from kerasweak.data.pipeline import EpochCounter
from kerasweak.errors import KerasweakError


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 12), st.integers(2, 6), st.integers(0, 2**31 - 1))
def test_proportions_from_masks_count_labelled_pixels(n, side, classes, seed):
    masks = np.random.default_rng(seed).integers(0, classes + 1, (n, side, side)).astype(np.uint8)
    masks[masks == classes] = IGNORE_LABEL
    props = proportions_from_masks(masks, classes)
    for mask, row in zip(masks, props):
        labelled = mask[mask != IGNORE_LABEL]
        expected = np.bincount(labelled, minlength=classes) / len(labelled) if len(labelled) else np.full(classes, 1 / classes)
        np.testing.assert_allclose(row, expected, rtol=1e-6)


def test_split_is_fixed_disjoint_and_80_20():
    train, val, test = split_indices(1647, seed=0)
    assert (len(train), len(val), len(test)) == (1186, 132, 329)  # round(0.2 * 1647) = 329 test
    assert len(set(train) | set(val) | set(test)) == 1647
    again = split_indices(1647, seed=0)
    assert all((a == b).all() for a, b in zip((train, val, test), again))


def test_fake_dubai_reader_patches_masks_and_palette_pngs(fake_dubai):
    patches = read_dubai(fake_dubai, patch_size=32)
    # 96x72 images -> 3x2 patches each, 2 tiles x 2 images
    assert len(patches) == 24 and patches.images.shape == (24, 32, 32, 3)
    assert patches.class_names == DUBAI_CLASSES
    assert (patches.masks[0, :4, :4] == IGNORE_LABEL).all()
    np.testing.assert_allclose(patches.proportions.sum(axis=1), 1.0, rtol=1e-6)
    assert set(np.unique(patches.masks[12:])) <= set(range(6))  # tile 2: palette masks decoded


def test_unknown_mask_colour_names_file_and_colour(fake_dubai):
    mask_path = fake_dubai / "Tile 1" / "masks" / "image_part_002.png"
    rgb = np.array(Image.open(mask_path).convert("RGB"))
    rgb[10, 10] = (1, 2, 3)
    Image.fromarray(rgb).save(mask_path)
    with pytest.raises(KerasweakError, match=r"image_part_002.png: unknown mask colour #010203"):
        read_dubai(fake_dubai, patch_size=32)


def test_image_smaller_than_a_patch_is_an_error(fake_dubai):
    with pytest.raises(KerasweakError, match="smaller than a 224x224 patch"):
        read_dubai(fake_dubai, patch_size=224)


def test_corrupt_and_truncated_images_are_errors(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(KerasweakError, match="bad.jpg: cannot decode image"):
        read_image(bad)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-2000])
    with pytest.raises(KerasweakError, match="truncated.png: cannot decode image"):
        read_image(truncated)


def test_unsupported_bit_depth_is_an_error(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint16) + 1000).save(path)
    with pytest.raises(KerasweakError, match="deep.png: unsupported image mode"):
        read_image(path)


def test_empty_and_missing_data_folders_are_errors(tmp_path):
    with pytest.raises(KerasweakError, match="does not exist"):
        find_dataset("aerial-dubai", tmp_path / "nowhere")
    with pytest.raises(KerasweakError, match="humansintheloop"):
        find_dataset("aerial-dubai", tmp_path)
    (tmp_path / "Tile 1" / "images").mkdir(parents=True)
    with pytest.raises(KerasweakError, match="empty folder"):
        read_dubai(find_dataset("aerial-dubai", tmp_path))


def _write_csv(tmp_path, rows, header="image,a,b,c"):
    path = tmp_path / "props.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_proportions_csv_without_masks_trains_a_patchset(tmp_path):
    for name in ("x.png", "y.png"):
        Image.fromarray(np.full((300, 260, 3), 90, np.uint8)).save(tmp_path / name)
    path = _write_csv(tmp_path, ["x.png,0.2,0.3,0.5", "y.png,1,0,0"])
    patches = read_proportions_dataset(path, patch_size=224)
    assert patches.masks is None and patches.class_names == ["a", "b", "c"]
    assert patches.images.shape == (2, 224, 224, 3)
    np.testing.assert_allclose(patches.proportions, [[0.2, 0.3, 0.5], [1, 0, 0]])
    batch = next(iter(make_dataset(patches.images, patches.proportions, batch_size=2)))
    assert batch[0].dtype.name == "float32" and tuple(batch[1].shape) == (2, 3)


@pytest.mark.parametrize("pipeline,batches", [({}, 4), ({"shuffle": True}, 4), ({"shuffle": True, "epoch": True}, 4),
                                              ({"shuffle": True, "augment": ["flip_rotate"], "mosaic": 2}, 2)])
def test_every_pipeline_runs_without_tf_data_autotuning(pipeline, batches):
    """Autotuning makes deleting an epoch's iterator stall for seconds (benchmarks/epoch_stall.py)."""
    if pipeline.get("epoch"):
        pipeline = {**pipeline, "epoch": EpochCounter().epoch}
    images, proportions = np.zeros((8, 32, 32, 3), np.uint8), np.full((8, 2), 0.5, np.float32)
    data = make_dataset(images, proportions, batch_size=2, **pipeline)
    assert data.options().autotune.enabled is False
    assert sum(1 for _ in data) == batches


@pytest.mark.parametrize("row,problem", [
    ("x.png,0.2,0.3,0.4", "line 2: proportions sum to 0.9000, not 1"),
    ("x.png,nan,0.5,0.5", "line 2: proportions must be finite (found NaN or inf)"),
    ("x.png,-0.5,1.0,0.5", "line 2: proportions must not be negative"),
    ("x.png,0.5,0.5", "line 2: 2 proportions, expected 3"),
    ("x.png,half,0.5,0", "line 2: proportions must be numbers"),
])
def test_bad_proportion_rows_name_file_and_line(tmp_path, row, problem):
    with pytest.raises(KerasweakError) as err:
        read_proportions_csv(_write_csv(tmp_path, [row]))
    assert str(err.value) == f"{tmp_path / 'props.csv'}: {problem}"


def test_wrong_class_count_in_header_is_an_error(tmp_path):
    with pytest.raises(KerasweakError, match="header has 3 classes, expected 6"):
        read_proportions_csv(_write_csv(tmp_path, ["x.png,1,0,0"]), class_names=DUBAI_CLASSES)


@pytest.mark.slow
def test_real_aerial_dubai_gives_the_papers_1647_patches(shared_data):
    patches = read_dubai(find_dataset("aerial-dubai", shared_data))
    assert len(patches) == 1647
    per_tile = [sum(s.startswith(f"Tile {t}/") for s in patches.sources) for t in range(1, 9)]
    assert per_tile == [54, 36, 54, 108, 180, 81, 648, 486]
    assert set(np.unique(patches.masks)) == {0, 1, 2, 3, 4, 5, IGNORE_LABEL}
