"""Test-set evaluation: E-measure and trimap mIoU pooled over batches, and in a run's metrics, tables and plot."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sk_confusion_matrix, jaccard_score

from kerasweak.data import PatchSet
from kerasweak.errors import KerasweakError
from kerasweak.constants import IGNORE_LABEL
from kerasweak.evaluation import (dihedral_mean, evaluate_patches, in_reflect_context, most_frequent_class_scores,
                                  predict_probabilities)
from kerasweak.inference import load_export
from kerasweak.metrics import class_e_measures, e_measure_scores, labels_from_probabilities, trimap_miou
from kerasweak.data import read_patches, read_test_patches, recipe_split
from kerasweak.recipe import load_recipe, normalise_recipe
from helpers import assert_clean_error, kerasweak

CLASSES = ["a", "b", "c"]


def _reference(labels, predicted, widths, class_names=CLASSES):
    """The figures from whole-set arrays, with kerasweak.metrics' reference functions."""
    trimap = trimap_miou(labels, predicted, len(class_names), widths)
    return (e_measure_scores(class_e_measures(labels, predicted, len(class_names)), class_names),
            {region: {str(w): trimap[w][region] for w in widths} for region in ("boundary", "non_boundary")})


def test_batched_e_measure_and_trimap_miou_equal_the_whole_set_reference():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.repeat(rng.integers(0, 3, (7, 4, 4)), 4, 1), 4, 2).astype(np.uint8)
    labels[0, :3, :3] = 255  # unlabelled pixels
    predicted = np.where(rng.random(labels.shape) < 0.8, labels % 3, rng.integers(0, 3, labels.shape)).astype(np.uint8)
    patches = PatchSet(images=predicted[..., None], masks=labels, proportions=np.zeros((7, 3), np.float32),
                       sources=[""] * 7, class_names=CLASSES, palette=np.zeros((3, 3), np.uint8))
    one_hot = lambda batch: np.eye(3, dtype=np.float32)[batch[..., 0].astype(int)]  # noqa: E731 (the "model")
    scores = evaluate_patches(one_hot, patches, batch_size=3, e_measure=True, trimap_widths=[1, 3])
    e_scores, trimap = _reference(labels, predicted, [1, 3])
    assert scores["e_measure"] == pytest.approx(e_scores["e_measure"])
    assert scores["e_measure_per_class"] == pytest.approx(e_scores["e_measure_per_class"])
    for region in trimap:
        assert scores["trimap_miou"][region] == pytest.approx(trimap[region])
    assert "e_measure" not in evaluate_patches(one_hot, patches)  # off unless asked for


def test_the_calibrated_cut_is_scored_from_the_same_class_maps_in_one_pass():
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(3), size=(5, 6, 6)).astype(np.float32)
    labels = rng.integers(0, 3, (5, 6, 6)).astype(np.uint8)
    patches = PatchSet(images=np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 6, 6, 1), np.float32),
                       masks=labels, proportions=np.zeros((5, 3), np.float32), sources=[""] * 5, class_names=CLASSES,
                       palette=np.zeros((3, 3), np.uint8))
    calls = []

    def model(batch):
        calls.append(len(batch))
        return probabilities[batch[:, 0, 0, 0].astype(int)]

    bias = np.array([0.0, 1.5, -0.5])
    scores = evaluate_patches(model, patches, batch_size=2, class_bias=bias)
    assert calls == [2, 2, 1]  # each patch predicted once for both cuts
    for figures, cut in ((scores, labels_from_probabilities(probabilities)),
                         (scores["calibrated"], labels_from_probabilities(probabilities, bias))):
        assert figures["miou"] == pytest.approx(jaccard_score(labels.ravel(), cut.ravel(), average="macro"))
        assert figures["confusion_matrix"] == sk_confusion_matrix(labels.ravel(), cut.ravel(), labels=[0, 1, 2]).tolist()
    assert scores["calibrated"]["class_bias"] == bias.tolist()
    assert "calibrated" not in evaluate_patches(model, patches)


def _views(images):
    """The 8 flips and rotations of square images (4 flips otherwise), as functions and their results."""
    turns = range(4) if images.shape[1] == images.shape[2] else (0, 2)
    return [np.rot90(images, turn, axes=(1, 2))[:, :, ::-1] if flip else np.rot90(images, turn, axes=(1, 2))
            for turn in turns for flip in (False, True)]


@settings(max_examples=25, deadline=None)
@given(height=st.integers(1, 6), width=st.integers(1, 6), seed=st.integers(0, 2 ** 16))
def test_test_time_flips_give_an_equivariant_mean_and_leave_an_equivariant_model_alone(height, width, seed):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(2, height, width, 1)).astype(np.float32)
    calls = []

    def by_position(batch):  # depends on where a pixel is: not equivariant
        calls.append(batch.shape)
        rows = np.arange(batch.shape[1])[:, None] + 2 * np.arange(batch.shape[2])[None, :] ** 2
        return np.concatenate([batch * rows[None, :, :, None], np.exp(batch)], axis=-1)

    flipped = dihedral_mean(by_position)
    assert len(calls) == 0 and flipped(images).shape == (2, height, width, 2)
    assert len(calls) == (8 if height == width else 4)
    for view, mapped in zip(_views(images), _views(flipped(images))):  # flipping the input flips the output
        np.testing.assert_allclose(flipped(view), mapped, rtol=1e-5, atol=1e-5)
    per_pixel = lambda batch: np.concatenate([np.tanh(batch), batch ** 2], axis=-1)
    np.testing.assert_allclose(dihedral_mean(per_pixel)(images), per_pixel(images), rtol=1e-6, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(height=st.integers(2, 9), width=st.integers(2, 9), pad=st.integers(0, 8), seed=st.integers(0, 2 ** 16))
def test_reflect_context_moves_what_a_model_puts_at_the_input_border_outside_the_patch(height, width, pad, seed):
    pad = min(pad, height - 1, width - 1)  # numpy's reflect needs pad < side
    images = np.random.default_rng(seed).normal(size=(2, height, width, 1)).astype(np.float32)

    def marks_left_column(batch):  # a border shortcut: channel 1 is 1 on the input's first column, whatever it shows
        shortcut = np.zeros_like(batch)
        shortcut[:, :, 0] = 1.0
        return np.concatenate([batch, shortcut], axis=-1)

    seen = in_reflect_context(marks_left_column, pad)(images)
    assert seen.shape == (2, height, width, 2)
    np.testing.assert_array_equal(seen[..., 0], images[..., 0])  # the crop is the patch itself
    assert seen[..., 1].sum() == (0 if pad else 2 * height)  # the shortcut column lies outside the patch


@settings(max_examples=40, deadline=None)
@given(train=st.integers(1, 5), test=st.integers(1, 5), chunk=st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_the_most_frequent_class_floor_equals_sklearn_on_a_constant_map(train, test, chunk, seed):
    rng = np.random.default_rng(seed)
    train_masks = rng.choice([0, 1, 1, 2, IGNORE_LABEL], size=(train, 3, 4)).astype(np.uint8)
    test_masks = rng.choice([0, 1, 2, 2, IGNORE_LABEL], size=(test, 3, 4)).astype(np.uint8)
    floor = most_frequent_class_scores(train_masks, test_masks, CLASSES, chunk=chunk)
    kept = train_masks[train_masks != IGNORE_LABEL]
    most = np.bincount(kept, minlength=3).argmax() if kept.size else 0  # np.argmax: the first of equal counts
    assert floor["class"] == CLASSES[most]
    truth = test_masks[test_masks != IGNORE_LABEL]
    if truth.size:
        constant = np.full_like(truth, most)
        iou = jaccard_score(truth, constant, labels=[0, 1, 2], average=None, zero_division=0)
        assert floor["miou"] == pytest.approx(iou.mean()) and floor["accuracy"] == pytest.approx(np.mean(truth == most))


@pytest.mark.slow
def test_a_run_reports_the_figures_of_its_exported_model(edge_runs):
    out = edge_runs["dubai-semeda"]
    results = json.loads((out / "results.json").read_text())
    recipe = normalise_recipe(results["config"]["recipe"])
    widths = recipe["evaluation"]["trimap_widths"]
    seed = json.loads((out / f"seed_{results['exported_seed']}" / "metrics.json").read_text())
    test = read_test_patches(recipe, edge_runs["data"])
    predicted = labels_from_probabilities(predict_probabilities(load_export(out / "model")[0], test.images))
    e_scores, trimap = _reference(test.masks, predicted, widths, test.class_names)
    assert seed["e_measure_per_class"] == pytest.approx(e_scores["e_measure_per_class"], abs=1e-6, nan_ok=True)
    for region in trimap:
        assert seed["trimap_miou"][region] == pytest.approx(trimap[region], abs=1e-6, nan_ok=True)
    summary = results["summary"]
    assert summary["trimap_miou"]["boundary"]["1"]["values"] == [m["trimap_miou"]["boundary"]["1"] for m in results["per_seed"]]
    table = (out / "results.md").read_text()
    assert "| Mean accuracy | E-measure | Seconds/seed |" in table
    assert f"| E-measure | SEMEDA (kerasweak) (2 seeds) | {100 * summary['e_measure_per_class']['Building']['mean']:.1f} ± " in table
    assert "| Model | Region | " + " | ".join(f"w = {w}" for w in widths) + " |" in table
    assert (out / "trimap.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("section, message", [
    ("trimap_width = [1]", "[evaluation] trimap_width: unknown key (did you mean `trimap_widths`?); "
                           "known: e_measure, trimap_widths, calibrate, test_time_flips, reflect_context"),
    ("trimap_widths = [0, 2]", "[evaluation] trimap_widths item 0: must be >= 1, got 0"),
    ('e_measure = "yes"', "[evaluation] e_measure must be true or false, got 'yes'"),
    ("calibrate = 1", "[evaluation] calibrate must be true or false, got 1"),
    ("reflect_context = 12", "[evaluation] reflect_context must be 0 or a positive multiple of 8, got 12"),
])
def test_bad_evaluation_settings_are_one_line_errors_before_any_data_is_read(tmp_path, section, message):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(f'extends = "dubai-ppce"\nname = "bad"\n[evaluation]\n{section}\n')
    assert_clean_error(kerasweak("recipe", recipe, "--out", tmp_path / "out"), f"error: {recipe}: {message}")
    with pytest.raises(KerasweakError):
        load_recipe(recipe)


def test_the_confusion_counts_and_their_row_normalised_figure_match_sklearn(tmp_path):
    from kerasweak.evaluation import confusion_figure, row_normalised

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, (6, 8, 8)).astype(np.uint8)
    labels[0, :4] = 255  # ignored
    labels[labels == 2] = np.where(rng.random(np.sum(labels == 2)) < 0.5, 2, 255)
    predicted = np.where(rng.random(labels.shape) < 0.7, labels % 3, rng.integers(0, 3, labels.shape)).astype(np.uint8)
    patches = PatchSet(images=predicted[..., None], masks=labels, proportions=np.zeros((6, 3), np.float32),
                       sources=[""] * 6, class_names=CLASSES, palette=np.zeros((3, 3), np.uint8))
    one_hot = lambda batch: np.eye(3, dtype=np.float32)[batch[..., 0].astype(int)]  # noqa: E731 (the "model")
    matrix = evaluate_patches(one_hot, patches, batch_size=4)["confusion_matrix"]
    keep = labels != 255
    np.testing.assert_array_equal(matrix, sk_confusion_matrix(labels[keep], predicted[keep], labels=[0, 1, 2]))
    np.testing.assert_allclose(row_normalised(matrix),
                               sk_confusion_matrix(labels[keep], predicted[keep], labels=[0, 1, 2], normalize="true"))
    confusion_figure(tmp_path / "confusion.png", matrix, CLASSES)
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_scores_in_reflected_context_leave_a_per_pixel_model_alone_and_drop_a_border_stripe():
    labels = np.random.default_rng(5).integers(0, 3, (4, 16, 16)).astype(np.uint8)
    patches = PatchSet(images=labels[..., None], masks=labels, proportions=np.zeros((4, 3), np.float32),
                       sources=[""] * 4, class_names=CLASSES, palette=np.zeros((3, 3), np.uint8))
    one_hot = lambda batch: np.eye(3, dtype=np.float32)[batch[..., 0].astype(int)]  # noqa: E731 (a per-pixel model)

    def striped(batch):  # the same model, with class 2 painted on its input's last column
        maps = one_hot(batch)
        maps[:, :, -1] = (0.0, 0.0, 1.0)
        return maps

    for model, plain_miou in ((one_hot, 1.0), (striped, None)):
        scores = evaluate_patches(model, patches, reflect_context=8)
        assert scores["in_context"]["miou"] == 1.0 and "in_context" not in scores["in_context"]
        assert scores["miou"] == 1.0 if plain_miou else scores["miou"] < 1.0
    assert "in_context" not in evaluate_patches(one_hot, patches)


@pytest.mark.slow
def test_a_run_with_test_time_flips_reports_them_beside_the_plain_figures(tmp_path, fake_dubai, tiny_recipe, monkeypatch):
    from kerasweak.data import proportions
    from kerasweak.runner import run_recipe

    monkeypatch.setattr(proportions, "FEW_BAGS", 10 ** 6)  # every dataset is too small: the run says so first
    recipe = load_recipe(str(tiny_recipe("spss", train={"epochs": 1}, evaluation={"test_time_flips": True,
                                                                                  "reflect_context": 8})))
    printed = []
    results = run_recipe(recipe, data=fake_dubai, out=tmp_path / "out", verbose=0, echo=printed.append)
    assert printed[1] == "warning: " + proportions.few_bags_warning(len(recipe_split(recipe, read_patches(recipe, fake_dubai))[0]))
    seed = results["per_seed"][0]
    assert 0 <= seed["flipped"]["miou"] <= 1 and "flipped" not in seed["flipped"]
    assert results["summary"]["flipped"]["miou"]["values"] == [seed["flipped"]["miou"]]
    table = (tmp_path / "out" / "results.md").read_text()
    assert f"mean of the flipped and rotated patches | {100 * seed['flipped']['miou']:.1f} ± 0.0 |" in table
    assert 0 <= seed["in_context"]["miou"] <= 1
    assert f"patches predicted with reflected context | {100 * seed['in_context']['miou']:.1f} ± 0.0 |" in table
    floor = results["most_frequent_class"]  # a map of one class everywhere, the row every model must beat
    patches = read_patches(recipe, fake_dubai)
    train, _, test = recipe_split(recipe, patches)
    assert floor == most_frequent_class_scores(patches.subset(train).masks, patches.subset(test).masks, patches.class_names)
    row = next(line for line in table.splitlines() if " everywhere (the training masks' most frequent class) |" in line)
    assert row.startswith(f"| {floor['class']} everywhere (the training masks' most frequent class) | {100 * floor['miou']:.1f} | "
                          f"{100 * floor['miou_5']:.1f} | ") and row.endswith(f" | {100 * floor['accuracy']:.1f} |  |")
