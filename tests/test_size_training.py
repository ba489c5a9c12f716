"""Object-size recipes: sizes files, size targets, the two-stage protocol, m-/n-sweeps (tiny runs on fake volumes)."""

import json

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from sklearn.metrics import jaccard_score

from kerasweak.data import PatchSet, make_dataset, read_hippocampus, read_sizes_csv, sizes_for_sources
from kerasweak.errors import KerasweakError
from kerasweak.evaluation import evaluate_patches
from kerasweak.methods.sizes import size_targets
from kerasweak.recipe import load_recipe, with_overrides
from kerasweak.training import csv_column, fit_stage
from helpers import assert_clean_error, assert_scores_match_confusion, held_out_masks, kerasweak, write_recipe

def _recipe(tmp_path, extends="hippocampus-size", **sections):
    """A tiny size recipe: the base's own slices (no [data] patch size) and precision, 4 masks, 2 + 2 epochs of batch 8."""
    return write_recipe(tmp_path / "tiny-sizes.toml", extends=extends, data=None,
                        train={"batch_size": 8, "patience": None, "mixed_precision": None},
                        sizes={"pixel_annotated": 4, "finetune_epochs": 2}, **sections)


# ----------------------------------------------------------------------------- sizes files

def test_a_sizes_csv_is_read_and_ordered_by_source(tmp_path):
    path = tmp_path / "sizes.csv"
    path.write_text("image,size\nb.png,4\na.png, 10.5\n\n")
    sizes = read_sizes_csv(path)
    assert sizes == {"b.png": 4.0, "a.png": 10.5}
    np.testing.assert_array_equal(sizes_for_sources(sizes, ["a.png", "b.png"], path), [10.5, 4.0])


@pytest.mark.parametrize("text, message", [
    ("image,size\na.png,-2\n", "line 2: size -2 must be a finite number >= 0"),
    ("image,size\na.png,big\n", "line 2: size 'big' is not a number"),
    ("image,size\na.png,nan\n", "line 2: size nan must be a finite number >= 0"),
    ("image,size\na.png,2,3\n", "line 2: expected 2 columns"),
    ("image,size\na.png,2\na.png,3\n", "line 3: image 'a.png' is listed twice"),
    ("name,value\na.png,2\n", "expected a header 'image,size'"),
    ("image,size\n", "no size rows"),
])
def test_bad_sizes_files_are_one_line_errors_naming_the_file(tmp_path, text, message):
    path = tmp_path / "sizes.csv"
    path.write_text(text)
    with pytest.raises(KerasweakError, match=message) as err:
        read_sizes_csv(path)
    assert str(path) in str(err.value)


def test_an_image_without_a_size_and_a_size_without_an_image_are_errors(tmp_path):
    with pytest.raises(KerasweakError, match="no size for image 'c.png' \\(1 of 2 images have none\\)"):
        sizes_for_sources({"a.png": 1.0}, ["a.png", "c.png"], tmp_path / "s.csv")
    with pytest.raises(KerasweakError, match="size given for unknown image 'z.png'"):
        sizes_for_sources({"a.png": 1.0, "z.png": 2.0}, ["a.png"], tmp_path / "s.csv")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="ab,.-e1 0\"x", max_size=6), max_size=3), max_size=4))
def test_the_sizes_reader_returns_valid_sizes_or_a_kerasweak_error(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("fuzz") / "sizes.csv"
    path.write_text("image,size\n" + "\n".join(",".join(row) for row in rows))
    try:
        sizes = read_sizes_csv(path)
    except KerasweakError as err:
        assert "\n" not in str(err) and str(path) in str(err)
    else:
        assert sizes and all(np.isfinite(v) and v >= 0 for v in sizes.values())


# ----------------------------------------------------------------------------- targets and evaluation

def test_size_targets_hide_the_masks_of_size_annotated_images():
    masks = np.ones((4, 8, 8), np.uint8)
    patches = PatchSet(np.zeros((4, 8, 8, 1), np.uint8), masks, np.ones((4, 1), np.float32), list("abcd"), ["B", "F"],
                       np.zeros((2, 3), np.uint8), sizes=np.array([8, 8, 8, 8], np.float32))
    targets = size_targets(patches, np.array([1, 3]))
    np.testing.assert_array_equal(targets["mask"].sum(axis=(1, 2)), [0, 64, 0, 64])
    np.testing.assert_array_equal(targets["mask_weight"], [0, 1, 0, 1])
    np.testing.assert_array_equal(targets["size_weight"], [1, 0, 1, 0])
    np.testing.assert_array_equal(size_targets(patches, np.arange(4), labelled_size_weight=1.0)["size_weight"], [1, 1, 1, 1])


def test_size_settings_refuse_unknown_keys_and_bad_counts():
    with pytest.raises(KerasweakError, match=r"\[sizes\] m: unknown key; known: pixel_annotated, "):
        with_overrides(load_recipe("hippocampus-size"), {"sizes": {"m": 3}})
    with pytest.raises(KerasweakError, match=r"\[sizes\] num_samples must be >= 1, got 0"):
        with_overrides(load_recipe("hippocampus-size"), {"sizes": {"num_samples": 0}})


def _chessboard_size(mask):
    """2 · max chessboard distance to the background, outside the image counting as background (scipy reference)."""
    return 2 * ndimage.distance_transform_cdt(np.pad(mask, 1), metric="chessboard").max()


def test_size_scores_match_sklearn_iou_and_scipy_sizes():
    rng = np.random.default_rng(1)
    truth = (rng.random((6, 16, 16)) < 0.5).astype(np.uint8)
    probabilities = rng.random((6, 16, 16, 1)).astype(np.float32)
    patches = PatchSet(np.zeros((6, 16, 16, 1), np.uint8), truth, np.zeros((6, 1), np.float32), list("abcdef"), ["B", "F"],
                       np.zeros((2, 3), np.uint8), sizes=np.array([_chessboard_size(m) for m in truth], np.float32))
    scores = evaluate_patches(lambda batch: probabilities, patches)  # one batch of 6
    predicted = probabilities[..., 0] >= 0.5
    iou = np.mean([jaccard_score(t.ravel(), p.ravel()) for t, p in zip(truth, predicted)])
    error = np.mean([(_chessboard_size(t) - _chessboard_size(p.astype(np.uint8))) ** 2 for t, p in zip(truth, predicted)])
    assert scores["image_iou"] == pytest.approx(iou)
    assert scores["size_error"] == pytest.approx(error)


# ----------------------------------------------------------------------------- training stages

def test_a_finished_stage_is_not_trained_again(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    data = make_dataset(np.ones((8, 2), np.float32), np.zeros((8, 1), np.float32), batch_size=4)
    first = fit_stage(model, data, data, tmp_path, epochs=3, patience=5, verbose=0)
    assert first[1] == 3 and (tmp_path / "done.json").exists()
    second = fit_stage(model, data, data, tmp_path, epochs=3, patience=5, verbose=0)
    assert second[1] == 3 and len(csv_column(tmp_path / "log.csv", "loss")) == 3


@pytest.mark.slow
def test_the_size_recipe_pretrains_fine_tunes_reports_both_and_exports(tmp_path, fake_hippocampus):
    out = tmp_path / "out"
    result = kerasweak("recipe", _recipe(tmp_path), "--data", fake_hippocampus, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "| IoU pre-trained | IoU fine-tuned | E pre-trained | E fine-tuned | Mean IoU |" in (out / "results.md").read_text()
    metrics = json.loads((out / "seed_0" / "metrics.json").read_text())
    assert metrics["pixel_annotated"] == 4 and 0 <= metrics["pretrain_image_iou"] <= 1 and metrics["size_error"] >= 0
    test_masks = held_out_masks(read_hippocampus(fake_hippocampus / "hippocampus"), val_fraction=0.125)
    assert_scores_match_confusion(metrics, test_masks, prefix="pretrain_")  # the pre-trained backbone's test scores
    assert_scores_match_confusion(metrics, test_masks)
    assert (out / "seed_0" / "pretrain" / "done.json").exists()
    assert len(csv_column(out / "seed_0" / "finetune" / "log.csv", "val_size_error")) == 2
    for stage in ("pretrain", "finetune"):  # both stages show their predicted masks in TensorBoard
        assert list((out / "seed_0" / stage / "tensorboard" / "masks").glob("events.out.tfevents.*")), stage
    assert (out / "loss.png").is_file()
    assert json.loads((out / "model" / "kerasweak.json").read_text())["method"] == "sizes"
    model = keras.saving.load_model(out / "seed_0" / "model.keras")
    assert model.num_samples == 1 and model.backbone.output_shape[-1] == 1


@pytest.mark.slow
def test_sizes_from_a_csv_replace_the_mask_sizes_and_a_missing_one_is_a_clean_error(tmp_path, fake_hippocampus):
    patches = read_hippocampus(fake_hippocampus / "hippocampus")
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("image,size\n" + "".join(f"{s},{v:g}\n" for s, v in zip(patches.sources, patches.sizes)))
    out = tmp_path / "out"
    result = kerasweak("recipe", _recipe(tmp_path), "--data", fake_hippocampus, "--out", out, "--sizes", sizes,
                       "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "config.json").read_text())["sizes_csv"] == str(sizes)

    sizes.write_text("image,size\n" + "".join(f"{s},{v:g}\n" for s, v in zip(patches.sources[1:], patches.sizes[1:])))
    failed = kerasweak("recipe", _recipe(tmp_path), "--data", fake_hippocampus, "--out", tmp_path / "out2", "--sizes", sizes)
    assert_clean_error(failed, str(sizes), f"no size for image '{patches.sources[0]}'")
    assert not (tmp_path / "out2" / "seed_0").exists()


@pytest.mark.slow
def test_an_m_sweep_runs_its_seeds_per_setting_writes_tables_and_plots_and_resumes(tmp_path, fake_hippocampus):
    recipe = _recipe(tmp_path, extends="hippocampus-size-sweep-m",
                     sweep={"values": [2, 4], "seeds": [2, 1], "plots": ["size_iou", "finetune_curves", "epoch_seconds", "miou"]})
    out = tmp_path / "out"
    result = kerasweak("recipe", recipe, "--data", fake_hippocampus, "--out", out)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "pixel_annotated_2" / "results.json").read_text())["seeds"] == 2
    assert json.loads((out / "pixel_annotated_4" / "results.json").read_text())["seeds"] == 1
    table = (out / "results.md").read_text()
    assert "| m | IoU pre-trained | IoU fine-tuned | E pre-trained | E fine-tuned |" in table and "| Seeds | Seconds/seed |" in table
    assert "## Validation per fine-tuning epoch (seed 0)" in table and "| Epoch | E (m = 2) | E (m = 4) |" in table
    for name in ("sweep.png", "sweep_finetune_curves.png", "sweep_epoch_seconds.png", "sweep_miou.png"):
        assert (out / name).stat().st_size > 0
    rerun = kerasweak("recipe", recipe, "--data", fake_hippocampus, "--out", out)
    assert rerun.returncode == 0 and rerun.stdout.count("finished earlier, skipping") == 2
