"""SPSS's signals from proportions beyond eq. 1 (issue 33): the losses by hand, the pseudo-label counts, the ramp, the recipe options."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak.errors import KerasweakError
from kerasweak.layers import GradientRamp
from kerasweak.methods import get_method
from kerasweak.methods.spss import Spss
from kerasweak.methods.spss_plus import SpssPlus
from kerasweak.ops.proportions import log_barrier
from kerasweak.proportion_losses import (ClassPresenceLoss, EntropyLoss, IntervalProportionLoss, PseudoLabelLoss,
                                         proportion_pseudo_labels)
from kerasweak.recipe import load_recipe, with_overrides
from kerasweak.runner import run_recipe

T = 5.0


def _spss(**train):
    return with_overrides(load_recipe("dubai-spss"), {"train": train})


# ----------------------------------------------------------------------------- the losses by hand

def test_the_interval_loss_is_zero_inside_the_tolerance_and_the_barrier_outside():
    rho = np.array([[0.3, 0.7]], "float32")
    loss = IntervalProportionLoss(tolerance=0.05, reduction=None)
    assert float(loss(rho, np.array([[0.34, 0.66]], "float32"))[0]) == 0.0
    predicted = np.array([[0.5, 0.5]], "float32")  # 0.15 outside the interval in both classes
    assert float(loss(rho, predicted)[0]) == pytest.approx(2 * -np.log(1 - 0.15) / T, rel=1e-5)
    assert float(loss(rho, predicted)[0]) == pytest.approx(2 * float(log_barrier(np.float32(0.15 - 1), T)), rel=1e-5)
    far = np.array([[0.3, 0.7]], "float32"), np.array([[1.0, 0.0]], "float32")  # v = 0.65, still on the log part
    assert float(loss(*far)[0]) == pytest.approx(2 * -np.log(1 - 0.65) / T, rel=1e-5)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 0.3))
def test_every_prediction_within_the_tolerance_costs_nothing(seed, tolerance):
    rng = np.random.default_rng(seed)
    rho = rng.dirichlet(np.ones(4), 3).astype("float32")
    predicted = (rho + rng.uniform(-1, 1, rho.shape) * tolerance * 0.99).astype("float32")
    assert np.all(np.asarray(IntervalProportionLoss(tolerance, reduction=None)(rho, predicted)) == 0.0)


def _two_class_maps():
    foreground = np.array([[[0.9, 0.2], [0.6, 0.3]]], "float32")  # (1, 2, 2)
    return foreground, np.stack([1 - foreground, foreground], axis=-1)


def test_the_pseudo_label_loss_by_hand():
    foreground, maps = _two_class_maps()
    # ρ = 0.5 of 4 pixels: the two of highest p1 (0.9 and 0.6) are labelled 1, the others 0
    expected = -np.mean(np.log([0.9, 0.8, 0.6, 0.7]))
    assert float(PseudoLabelLoss()(np.array([[0.5, 0.5]], "float32"), maps)) == pytest.approx(expected, rel=1e-5)
    sigmoid = PseudoLabelLoss()(np.array([[0.5]], "float32"), foreground[..., None])  # one channel: the same labelling
    assert float(sigmoid) == pytest.approx(expected, rel=1e-5)
    logits = np.log(maps)
    assert float(PseudoLabelLoss(from_logits=True)(np.array([[0.5, 0.5]], "float32"), logits)) == pytest.approx(expected, rel=1e-5)


def test_the_pseudo_labels_carry_no_gradient():
    _, maps = _two_class_maps()
    maps = tf.Variable(maps)
    with tf.GradientTape() as tape:
        labels = tf.cast(proportion_pseudo_labels(np.array([[0.5, 0.5]], "float32"), maps), tf.float32)
    assert tape.gradient(labels, maps) is None


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 9), st.integers(1, 9), st.booleans())
def test_two_class_pseudo_labels_count_round_proportion_times_pixels(seed, height, width, one_channel):
    rng = np.random.default_rng(seed)
    foreground = rng.uniform(0.01, 0.99, (3, height, width)).astype("float32")
    rho = rng.uniform(0, 1, 3).astype("float32")
    rho[0] = 0.0
    maps = foreground[..., None] if one_channel else np.stack([1 - foreground, foreground], axis=-1)
    proportions = rho[:, None] if one_channel else np.stack([1 - rho, rho], axis=-1)
    labels = np.asarray(proportion_pseudo_labels(proportions, maps))
    np.testing.assert_array_equal(labels.sum(axis=(1, 2)), np.round(rho * height * width))


def test_the_class_presence_loss_by_hand():
    maps = np.zeros((1, 2, 2, 3), "float32")
    maps[0, ..., 0] = [[0.9, 0.8], [0.1, 0.2]]
    maps[0, ..., 1] = [[0.1, 0.2], [0.3, 0.0]]
    maps[0, ..., 2] = 1 - maps[0, ..., 0] - maps[0, ..., 1]
    proportions = np.array([[0.5, 0.0, 0.5]], "float32")
    absent = 0.3  # class 1's maximum
    present = -np.mean(np.log([(0.9 + 0.8) / 2, (0.8 + 0.6) / 2]))  # the top-2 means of classes 0 and 2
    loss = ClassPresenceLoss(absent_weight=2.0, present_weight=0.5, absent_top_k=1, present_top_k=2)
    assert float(loss(proportions, maps)) == pytest.approx(2.0 * absent + 0.5 * present, rel=1e-5)
    assert float(ClassPresenceLoss(present_top_k=100)(proportions, maps)) == pytest.approx(absent, rel=1e-5)  # k <= pixels


def test_the_class_presence_loss_of_one_sigmoid_channel_scores_both_classes():
    foreground = np.array([[[[0.2], [0.4]], [[0.1], [0.3]]]], "float32")  # (1, 2, 2, 1)
    loss = ClassPresenceLoss(absent_weight=1.0, present_weight=1.0, present_top_k=1)
    # ρ = 0: the foreground is absent (its max 0.4), the background present (its max 0.9)
    assert float(loss(np.array([[0.0]], "float32"), foreground)) == pytest.approx(0.4 - np.log(0.9), rel=1e-5)


def test_the_entropy_loss_by_hand():
    maps = np.array([[[[0.5, 0.5], [1.0, 0.0]]], [[[0.25, 0.75], [0.9, 0.1]]]], "float32")  # (2, 1, 2, 2)
    per_pixel = [[np.log(2), 0.0], [-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))]]
    proportions = np.zeros((2, 2), "float32")  # not read
    assert float(EntropyLoss()(proportions, maps)) == pytest.approx(np.mean(per_pixel), abs=1e-5)
    logits = np.log(np.clip(maps, 1e-12, 1))
    assert float(EntropyLoss(from_logits=True)(proportions, logits)) == pytest.approx(np.mean(per_pixel), abs=1e-5)
    assert float(EntropyLoss()(proportions, maps[..., 1:])) == pytest.approx(np.mean(per_pixel), abs=1e-5)  # one sigmoid channel


@pytest.mark.parametrize("loss", [IntervalProportionLoss(0.1), PseudoLabelLoss(temperature=0.5),
                                  ClassPresenceLoss(absent_weight=1.0, present_weight=0.3), EntropyLoss(from_logits=True)],
                         ids=lambda loss: loss.name)
def test_each_loss_round_trips_its_config(loss):
    copy = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(copy) is type(loss) and copy.get_config() == loss.get_config()


# ----------------------------------------------------------------------------- the ramp

def test_the_gradient_ramp_scales_the_gradient_linearly_and_not_the_value():
    ramp = GradientRamp(ramp_steps=4)
    x = tf.Variable(np.ones((1, 2), "float32"))
    scales = []
    for _ in range(6):
        with tf.GradientTape() as tape:
            y = ramp(x, training=True)
            total = tf.reduce_sum(y)
        np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
        scales.append(float(tape.gradient(total, x)[0, 0]))
    assert scales == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    assert int(ramp.step.numpy()) == 6
    ramp(x, training=False)
    assert int(ramp.step.numpy()) == 6  # inference does not count


def test_the_ramp_lasts_the_recipes_epochs_of_training_steps():
    recipe = _spss(pseudo_label_weight=0.5, pseudo_label_ramp_epochs=3)
    model = Spss().build(6, recipe, 3, steps_per_epoch=7)
    assert model.get_layer("pseudo_label_maps").ramp_steps == 21
    assert set(model.output) == {"proportions", "pseudo_label_maps"}
    model = Spss().build(6, _spss(entropy_weight=0.1, entropy_ramp_epochs=2), 3, steps_per_epoch=7)
    assert model.get_layer("entropy_maps").ramp_steps == 14 and set(model.output) == {"proportions", "entropy_maps"}


# ----------------------------------------------------------------------------- the recipe options

def test_every_option_is_off_by_default_and_the_model_and_loss_stay_those_of_the_paper():
    recipe = load_recipe("dubai-spss")
    method = get_method("spss")
    assert method.loss(recipe).get_config()["form"] == "mse" and method.loss_weights(recipe) is None
    assert not isinstance(method.build(6, recipe, 3).output, dict)


@pytest.mark.parametrize("options, message", [
    ({"loss": "hinge"}, r"\[train\] loss must be one of mse, kl, mse\+kl, interval, got 'hinge'"),
    ({"tolerance": 1.0}, r"\[train\] tolerance must be in \[0, 1\), got 1.0"),
    ({"pseudo_label_weight": -1}, r"\[train\] pseudo_label_weight must be >= 0, got -1"),
    ({"pseudo_label_ramp_epochs": 2.5}, r"\[train\] pseudo_label_ramp_epochs must be an integer, got 2.5"),
    ({"pseudo_label_temperature": 0}, r"\[train\] pseudo_label_temperature must be > 0, got 0"),
    ({"absent_class_weight": "high"}, r"\[train\] absent_class_weight must be a number, got 'high'"),
    ({"absent_class_top_k": 0}, r"\[train\] absent_class_top_k must be >= 1, got 0"),
    ({"present_class_weight": -0.5}, r"\[train\] present_class_weight must be >= 0, got -0.5"),
    ({"present_class_top_k": 0}, r"\[train\] present_class_top_k must be >= 1, got 0"),
    ({"entropy_weight": -0.1}, r"\[train\] entropy_weight must be >= 0, got -0.1"),
    ({"entropy_ramp_epochs": -1}, r"\[train\] entropy_ramp_epochs must be >= 0, got -1"),
    ({"pseudo_label_wieght": 1}, r"\[train\] pseudo_label_wieght: unknown key \(did you mean `pseudo_label_weight`\?\)"),
    ({"mosaic": 2, "absent_class_weight": 1}, r"\[train\] mosaic > 1 cannot go with pseudo_label_weight"),
])
def test_bad_signal_options_are_one_line_errors(options, message):
    with pytest.raises(KerasweakError, match=message) as error:
        _spss(**options)
    assert "\n" not in str(error.value)


def test_the_signal_options_belong_to_method_spss():
    with pytest.raises(KerasweakError, match=r"\[train\] absent_class_weight is a setting of method spss, not of pixel"):
        with_overrides(load_recipe("dubai-benchmark"), {"train": {"absent_class_weight": 1}})


SIGNALS = {  # [train] options: (the log columns they add, the loss they compile)
    "interval": ({"loss": "interval", "tolerance": 0.1}, {"loss"}, IntervalProportionLoss),
    "pseudo_labels": ({"pseudo_label_weight": 0.5, "pseudo_label_ramp_epochs": 1}, {"pseudo_label_maps_loss"},
                      PseudoLabelLoss),
    "presence": ({"absent_class_weight": 1.0, "present_class_weight": 0.1, "present_class_top_k": 4},
                 {"class_maps_loss"}, ClassPresenceLoss),
    "entropy": ({"entropy_weight": 0.1, "entropy_ramp_epochs": 1}, {"entropy_maps_loss"}, EntropyLoss),
}


def test_spss_plus_takes_the_interval_loss_pseudo_labels_and_entropy_beside_its_keypoints():
    assert set(get_method("spss_plus").build(1, load_recipe("em-spss-plus"), 1).output) == {"proportions", "class_maps"}
    recipe = with_overrides(load_recipe("em-spss-plus"), {"train": {
        "loss": "interval", "pseudo_label_weight": 0.2, "entropy_weight": 0.1, "entropy_ramp_epochs": 2}})
    method = SpssPlus()
    model = method.build(1, recipe, 1, steps_per_epoch=5)
    assert set(model.output) == {"proportions", "class_maps", "pseudo_label_maps", "entropy_maps"}
    assert model.get_layer("entropy_maps").ramp_steps == 10 and model.get_layer("pseudo_label_maps").ramp_steps == 0
    alpha = recipe["keypoints"]["alpha"]
    assert method.loss_weights(recipe) == {"proportions": alpha, "class_maps": 1 - alpha, "pseudo_label_maps": 0.2,
                                           "entropy_maps": 0.1}
    compiled = method.loss(recipe)
    assert isinstance(compiled["proportions"], IntervalProportionLoss) and isinstance(compiled["entropy_maps"], EntropyLoss)
    with pytest.raises(KerasweakError, match=r"\[train\] absent_class_weight is a setting of method spss, not of spss_plus"):
        with_overrides(load_recipe("em-spss-plus"), {"train": {"absent_class_weight": 1}})


@pytest.mark.slow
def test_spss_plus_with_pseudo_labels_and_entropy_trains_an_epoch(tmp_path, fake_epfl, tiny_recipe):
    options = {"epochs": 1, "pseudo_label_weight": 0.2, "pseudo_label_ramp_epochs": 1, "entropy_weight": 0.1}
    recipe = load_recipe(str(tiny_recipe(extends="em-spss-plus", name="tiny-em", train=options)))
    out = tmp_path / "out"
    seed = run_recipe(recipe, data=fake_epfl, out=out, verbose=0, echo=lambda *_: None)["per_seed"][0]
    assert seed["epochs"] == 1 and 0 <= seed["miou"] <= 1
    header = set((out / "seed_0" / "log.csv").read_text().splitlines()[0].split(","))
    assert {"pseudo_label_maps_loss", "entropy_maps_loss", "class_maps_loss", "val_entropy_maps_loss"} <= header


@pytest.mark.slow
@pytest.mark.parametrize("signal", SIGNALS)
def test_a_recipe_with_each_signal_trains_an_epoch(tmp_path, fake_dubai, tiny_recipe, signal):
    options, logged, loss = SIGNALS[signal]
    recipe = load_recipe(str(tiny_recipe("spss", train={"epochs": 1, **options})))
    out = tmp_path / "out"
    seed = run_recipe(recipe, data=fake_dubai, out=out, verbose=0, echo=lambda *_: None)["per_seed"][0]
    assert seed["epochs"] == 1 and 0 <= seed["miou"] <= 1
    header = (out / "seed_0" / "log.csv").read_text().splitlines()[0].split(",")
    assert logged <= set(header) and {f"val_{name}" for name in logged} <= set(header)
    compiled = keras.saving.load_model(out / "seed_0" / "model.keras").loss
    assert loss in {type(each) for each in (compiled.values() if isinstance(compiled, dict) else [compiled])}
