"""Own data: the generic dataset folder, `kerasweak train` per method, `evaluate --data DIR`, `convert`, `check-data`."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from folder_fakes import cvat_export, label_studio_export, write_folder
from helpers import SHARED_DATA, kerasweak
from kerasweak.data import read_dubai, read_patches, recipe_split
from kerasweak.data.folder import read_folder, read_labels
from kerasweak.recipe import load_recipe, normalise_recipe

TINY = ["--epochs", "1", "--patch-size", "16", "--base-filters", "2", "--batch-size", "8"]
DATA = {"patch_size": 16, "test_fraction": 0.2, "val_fraction": 0.1, "split_seed": 0}
POINTS = {f"img_{i:03d}.png": [(3, 4, "sky"), (20, 30, "car"), (35.5, 10, "road")] for i in range(10)}


def _train_and_evaluate(method, folder, out, *options):
    result = kerasweak("train", method, folder, "--out", out, *TINY, *options)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    for name in ("results.md", "figure.png", "loss.png", "split.csv", "model/kerasweak.json"):
        assert (out / name).is_file(), name
    scored = kerasweak("evaluate", out / "model", "--data", folder)
    assert scored.returncode == 0, scored.stderr
    assert f"mIoU {100 * results['summary']['miou']['mean']:.1f}" in scored.stdout
    return results


def _no_image_on_two_sides(out):
    parts = dict(line.split(",") for line in (out / "split.csv").read_text().splitlines()[1:])
    assert set(parts.values()) == {"train", "val", "test"}
    return parts


@pytest.mark.slow
@pytest.mark.parametrize("method,masks", [("pixel", "index"), ("spss", "colour")])
def test_train_and_evaluate_on_a_generic_folder(tmp_path, method, masks):
    folder = write_folder(tmp_path / "data", masks=masks)
    results = _train_and_evaluate(method, folder, tmp_path / "out")
    assert results["config"]["recipe"]["dataset"] == "folder"
    assert results["config"]["recipe"]["method"] == method
    _no_image_on_two_sides(tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["semeda", "sobel"])
def test_train_edge_methods_on_a_generic_folder(tmp_path, method):
    folder = write_folder(tmp_path / "data", masks="index")
    _train_and_evaluate(method, folder, tmp_path / "out")


@pytest.mark.slow
def test_train_spss_plus_on_label_studio_keypoints(tmp_path):
    folder = write_folder(tmp_path / "data", masks="index")
    converted = kerasweak("convert", "label-studio", label_studio_export(folder, POINTS), folder)
    assert converted.returncode == 0, converted.stderr
    assert "30 keypoints on 10 images" in converted.stdout
    _train_and_evaluate("spss-plus", folder, tmp_path / "out")


@pytest.mark.slow
def test_train_sizes_on_a_sizes_csv(tmp_path):
    folder = write_folder(tmp_path / "data", masks="index", classes=("background", "object"), size=(32, 32), sizes=True)
    results = _train_and_evaluate("sizes", folder, tmp_path / "out", "--patch-size", "32")
    assert "image_iou" in results["per_seed"][0]


@pytest.mark.slow
def test_keypoint_exports_give_the_same_keypoints_csv(tmp_path):
    folder = write_folder(tmp_path / "data", masks=None, proportions=True)
    assert kerasweak("convert", "label-studio", label_studio_export(folder, POINTS), folder).returncode == 0
    from_label_studio = (folder / "keypoints.csv").read_text()
    result = kerasweak("convert", "cvat", cvat_export(folder, POINTS), folder)
    assert result.returncode == 0, result.stderr
    assert (folder / "keypoints.csv").read_text() == from_label_studio
    labels = read_labels(folder)
    assert labels.keypoints["img_003.png"] == [(3.0, 4.0, 0), (20.0, 30.0, 2), (35.5, 10.0, 1)]


def test_the_split_is_by_image_and_max_samples_keeps_test_images(tmp_path):
    folder = write_folder(tmp_path / "data", masks="index")
    recipe = normalise_recipe({"name": "t", "dataset": "folder", "method": "pixel", "data": {"patch_size": 16}})
    patches = read_patches(recipe, folder)
    train, val, test = recipe_split(recipe, patches)
    sources = np.asarray(patches.sources)
    assert len(patches) == 40 and not set(sources[test]) & set(sources[train]) and not set(sources[val]) & set(sources[train])
    few = read_patches(recipe, folder, max_samples=8)
    assert len(few) == 8 and set(few.split) == {"train", "val", "test"}
    assert set(np.asarray(few.sources)[few.split == "test"]) <= set(sources[test])


def test_a_split_csv_is_kept(tmp_path):
    folder = write_folder(tmp_path / "data", masks="index", images=4)
    (folder / "split.csv").write_text("image,split\nimg_000.png,test\nimg_001,val\nimg_002.png,train\nimages/img_003.png,train\n")
    patches = read_folder(folder, DATA)
    assert [patches.split[patches.sources.index(f"img_00{i}.png")] for i in range(4)] == ["test", "val", "train", "train"]


def test_images_of_any_case_exif_orientation_and_16_bit_grey(tmp_path):
    folder = write_folder(tmp_path / "data", masks=None, proportions=True, images=4, suffix=".JPG", channels=1)
    path = folder / "images" / "img_000.JPG"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°: the stored 40x36 image shows as 36x40
    Image.open(path).save(path, exif=exif)
    Image.fromarray(np.full((36, 40), 51400, np.uint16)).save(folder / "images" / "img_001.tif")
    (folder / "images" / "img_001.JPG").unlink()
    (folder / "proportions.csv").write_text((folder / "proportions.csv").read_text().replace("img_001.JPG", "img_001"))
    patches = read_folder(folder, {**DATA, "patch_size": 32})
    assert patches.source_shapes["img_000.JPG"] == (40, 36)
    assert patches.source_shapes["img_001.tif"] == (36, 40)
    assert patches.images[patches.sources.index("img_001.tif")].max() == 200  # 51400 / 257
    assert patches.images.shape == (4, 32, 32, 1)


@pytest.mark.slow
def test_check_data_summarises_a_good_folder(tmp_path):
    folder = write_folder(tmp_path / "data", masks="index", proportions=True)
    result = kerasweak("check-data", folder)
    assert result.returncode == 0, result.stderr
    assert "10 images, 3 classes (sky, road, car)" in result.stdout
    assert "image sizes: 40x36 (10)" in result.stdout
    assert "labels: masks 10/10 images, proportions 10/10 images" in result.stdout
    assert "split (none given: seeded by image" in result.stdout and "train 7, val 1, test 2 images" in result.stdout
    assert result.stdout.rstrip().endswith("0 errors, 0 warnings")


def test_spss_and_check_data_warn_below_the_learning_curves_floor(tmp_path, monkeypatch):
    from kerasweak.data import PatchSet, proportions
    from kerasweak.data.folder_check import check_folder
    from kerasweak.methods import get_method

    monkeypatch.setattr(proportions, "FEW_BAGS", 8)
    assert proportions.few_bags_warning(8) is None
    assert proportions.few_bags_warning(7).startswith("7 training patches give SPSS 7 proportion vectors (one each); "
                                                     "on Aerial Dubai it needed 8 to beat a map of the most frequent class")
    seven = PatchSet(np.zeros((7, 16, 16, 3), np.uint8), None, np.full((7, 2), 0.5, np.float32), ["a"] * 7, ["x", "y"],
                     np.zeros((2, 3), np.uint8))
    assert get_method("spss").data_warnings(seven) == [proportions.few_bags_warning(7)]
    assert get_method("spss").data_warnings(seven.subset(np.arange(7).repeat(2))) == []
    assert get_method("pixel").data_warnings(seven) == []  # masks label every pixel
    folder = write_folder(tmp_path / "data", masks="index")  # 7 of its 10 images train (the seeded split)
    assert check_folder(folder).warnings == [f"{folder}: {proportions.few_bags_warning(7, 'training images')}"]
    monkeypatch.setattr(proportions, "FEW_BAGS", 7)
    assert check_folder(folder).warnings == []


@pytest.mark.slow
def test_train_says_which_label_file_is_missing(tmp_path):
    folder = write_folder(tmp_path / "data", masks=None, proportions=True)
    result = kerasweak("train", "spss-plus", folder, "--out", tmp_path / "out", *TINY)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {folder}: spss-plus needs keypoints.csv, or masks to sample keypoints from"
    result = kerasweak("train", "pixel", folder, "--out", tmp_path / "out", *TINY)
    assert "pixel needs masks/" in result.stderr


@pytest.mark.slow
def test_spss_trains_on_proportions_without_masks(tmp_path):
    folder = write_folder(tmp_path / "data", masks=None, proportions=True, size=(60, 30))
    result = kerasweak("train", "spss", folder, "--out", tmp_path / "out", *TINY[:2], "--patch-size", "32",
                       *TINY[4:])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["scored"] is False
    assert (tmp_path / "out" / "model" / "kerasweak.json").is_file() and (tmp_path / "out" / "loss.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["aerial-dubai"])
def test_convert_then_load_gives_the_built_in_readers_patches(tmp_path, name):
    """One real Aerial Dubai tile (../shared/data, present in CI beside the clone): same patches, proportions and split."""
    tile = SHARED_DATA / "aerial-dubai" / "Semantic segmentation dataset" / "Tile 1"
    if not tile.is_dir():
        pytest.skip("needs ../shared/data/aerial-dubai beside the checkout")
    source = tmp_path / "src"
    source.mkdir()
    os.symlink(tile, source / "Tile 1")
    result = kerasweak("convert", name, source, tmp_path / "folder")
    assert result.returncode == 0, result.stderr
    recipe = load_recipe("dubai-spss")
    built_in = read_dubai(source)
    folder = read_folder(tmp_path / "folder", recipe["data"])
    np.testing.assert_array_equal(folder.images, built_in.images)
    np.testing.assert_array_equal(folder.masks, built_in.masks)
    np.testing.assert_array_equal(folder.proportions, built_in.proportions)
    assert folder.class_names == list(built_in.class_names)
    np.testing.assert_array_equal(folder.palette, built_in.palette)
    for ours, theirs in zip(recipe_split(recipe, folder), recipe_split(recipe, len(built_in))):
        np.testing.assert_array_equal(ours, theirs)


def test_load_folder_streams_into_a_plain_model_fit(tmp_path):
    from kerasweak import losses, models
    from kerasweak.data import load_folder

    folder = load_folder(write_folder(tmp_path / "data", masks="colour"))
    assert folder.class_names == ["sky", "road", "car"] and folder.colours.tolist()[1] == [200, 40, 40]
    assert folder.count("train", 16) == 28 and len(folder.images("test")) == 2
    unet = models.build_unet(folder.num_outputs, base_filters=2)
    spss = models.build_spss(unet)
    spss.compile(optimizer="adam", loss=losses.ProportionLoss())
    history = spss.fit(folder.tf_dataset("train", "spss", batch_size=8, patch_size=16), epochs=2, verbose=0,
                       validation_data=folder.tf_dataset("val", "spss", batch_size=8, patch_size=16))
    assert len(history.history["val_loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
    images, masks = next(iter(folder.tf_dataset("test", "pixel", batch_size=4, patch_size=16)))
    assert images.shape == (4, 16, 16, 3) and masks.dtype == "int32"
    batch = next(iter(folder.tf_dataset("train", "spss-plus", batch_size=4, patch_size=16)))[1]
    assert batch["proportions"].shape == (4, 3) and batch["class_maps"].shape == (4, 16, 16, 6)
