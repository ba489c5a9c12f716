"""SPSS options beyond the paper: self-training on pseudo-masks, the cosine schedule, and the checks of every option."""

import json

import keras
import numpy as np
import pytest

from kerasweak.errors import KerasweakError
from kerasweak.methods import proportion_loss, spss_settings
from kerasweak.models import build_unet
from kerasweak.runner import load_recipe, run_recipe
from kerasweak.training import adam, predicted_pseudo_masks, pseudo_masks


def test_pseudo_masks_keep_the_argmax_only_where_it_reaches_the_confidence():
    probabilities = np.random.default_rng(0).dirichlet(np.full(4, 0.3), size=(3, 5, 6)).astype("float32")
    probabilities[0, 0, 0] = [0.9, 0.1, 0.0, 0.0]  # exactly at the threshold: kept
    expected = np.where(probabilities.max(-1) >= 0.9, probabilities.argmax(-1), 255)
    masks = pseudo_masks(probabilities, 0.9)
    assert masks.dtype == np.uint8 and masks[0, 0, 0] == 0
    np.testing.assert_array_equal(masks, expected)
    assert 0 < (masks == 255).mean() < 1
    sigmoid = np.array([[[[0.95], [0.5], [0.02]]]], "float32")  # one channel: p of the second class
    np.testing.assert_array_equal(pseudo_masks(sigmoid, 0.9), [[[1, 255, 0]]])


def test_predicted_pseudo_masks_are_those_of_the_whole_prediction():
    segmenter = build_unet(3, base_filters=4)
    images = np.random.default_rng(1).uniform(0, 255, (5, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(predicted_pseudo_masks(segmenter, images, 0.4, batch_size=2),
                                  pseudo_masks(segmenter.predict(images, verbose=0), 0.4))


def _with_train(**options):
    recipe = load_recipe("dubai-spss")
    return {**recipe, "train": {**recipe["train"], **options}}


@pytest.mark.parametrize("options, message", [
    ({"loss": "l1"}, r"\[train\] loss must be one of mse, kl, mse\+kl, got 'l1'"),
    ({"smoothness": -0.1}, r"smoothness must be a number >= 0, got -0.1"),
    ({"smoothness_sigma": 0}, r"smoothness_sigma must be a number > 0, got 0"),
    ({"self_train_rounds": 1.5}, r"self_train_rounds must be an integer >= 0, got 1.5"),
    ({"self_train_epochs": 0}, r"self_train_epochs must be an integer >= 1, got 0"),
    ({"self_train_confidence": 1.5}, r"self_train_confidence must be between 0 and 1, got 1.5"),
    ({"lr_schedule": "step"}, r"lr_schedule must be one of constant, cosine, got 'step'"),
])
def test_bad_spss_options_are_one_line_errors(options, message):
    recipe = _with_train(**options)
    with pytest.raises(KerasweakError, match=message) as error:
        proportion_loss(recipe), spss_settings(recipe), adam(recipe, 10, 1)
    assert "\n" not in str(error.value)


def test_the_smoothness_prior_and_self_training_need_method_spss():
    recipe = {**_with_train(self_train_rounds=1), "method": "pixel"}
    with pytest.raises(KerasweakError, match="smoothness and self_train_rounds need method spss, not pixel"):
        spss_settings(recipe)


def test_cosine_schedule_decays_to_zero_over_the_planned_steps():
    assert float(adam(_with_train(), 100, 3).learning_rate) == pytest.approx(1e-3)
    schedule = keras.saving.deserialize_keras_object(adam(_with_train(lr_schedule="cosine"), 100, 3, mosaic=2)
                                                     .get_config()["learning_rate"])
    # 100 patches -> 25 mosaics of 2×2, batches of 16 // 4 = 4 mosaics: 7 batches an epoch, 21 steps
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay) and schedule.decay_steps == 21
    assert float(schedule(0)) == pytest.approx(1e-3) and float(schedule(21)) == pytest.approx(0.0, abs=1e-9)


def test_a_self_training_round_runs_after_spss_and_resumes(tmp_path, fake_dubai, tiny_recipe):
    recipe = load_recipe(str(tiny_recipe("spss")))
    recipe["model"]["base_filters"] = 4
    recipe["train"].update(epochs=1, self_train_rounds=1, self_train_epochs=2, self_train_confidence=0.2, smoothness=0.1,
                           lr_schedule="cosine")
    out = tmp_path / "out"
    results = run_recipe(recipe, data=fake_dubai, out=out, verbose=0, echo=lambda *_: None)
    seed = results["per_seed"][0]
    assert seed["epochs"] == 1 and seed["self_train_1_epochs"] >= 1 and 0 <= seed["before_self_train_miou"] <= 1
    stage = out / "seed_0" / "self_train_1"
    log = (stage / "log.csv").read_text().splitlines()
    assert (stage / "done.json").exists() and "class_maps_loss" in log[0] and len(log) == 1 + seed["self_train_1_epochs"]
    model = keras.saving.load_model(out / "seed_0" / "model.keras")
    assert set(model(np.zeros((1, 32, 32, 3), "float32"))) == {"proportions", "class_maps"}
    assert model.get_layer("smoothness").weight == 0.1

    (out / "seed_0" / "metrics.json").unlink()  # the seed runs again: both finished stages load their best weights
    again = run_recipe(recipe, data=fake_dubai, out=out, verbose=0, echo=lambda *_: None)
    assert (stage / "log.csv").read_text().splitlines() == log
    assert again["per_seed"][0]["miou"] == pytest.approx(seed["miou"], abs=1e-6)
    assert json.loads((stage / "done.json").read_text())["epochs"] == seed["self_train_1_epochs"]
