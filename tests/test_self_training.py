"""SPSS options beyond the paper: self-training on pseudo-masks, the cosine schedule, and the checks of every option."""

import json

import keras
import numpy as np
import pytest

from kerasweak.data import read_dubai
from kerasweak.errors import KerasweakError
from kerasweak.methods.spss import predicted_pseudo_masks, pseudo_masks
from kerasweak.models import build_unet
from kerasweak.recipe import load_recipe, with_overrides
from kerasweak.runner import run_recipe
from kerasweak.training import make_optimizer
from helpers import assert_scores_match_confusion, held_out_masks


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
    return with_overrides(load_recipe("dubai-spss"), {"train": options})


@pytest.mark.parametrize("options, message", [
    ({"loss": "l1"}, r"\[train\] loss must be one of mse, kl, mse\+kl, interval, got 'l1'"),
    ({"smoothness": -0.1}, r"\[train\] smoothness must be >= 0, got -0.1"),
    ({"smoothness_sigma": 0}, r"\[train\] smoothness_sigma must be > 0, got 0"),
    ({"self_train_rounds": 1.5}, r"\[train\] self_train_rounds must be an integer, got 1.5"),
    ({"self_train_epochs": 0}, r"\[train\] self_train_epochs must be >= 1, got 0"),
    ({"self_train_confidence": 1.5}, r"\[train\] self_train_confidence must be between 0 and 1, got 1.5"),
    ({"lr_schedule": "step"}, r"\[train\] lr_schedule must be one of constant, cosine, warmup-cosine, one-cycle, got 'step'"),
])
def test_bad_spss_options_are_one_line_errors(options, message):
    with pytest.raises(KerasweakError, match=message) as error:
        _with_train(**options)
    assert "\n" not in str(error.value)


def test_the_smoothness_prior_and_self_training_need_method_spss():
    with pytest.raises(KerasweakError, match=r"\[train\] self_train_rounds is a setting of method spss, not of pixel"):
        with_overrides(load_recipe("dubai-benchmark"), {"train": {"self_train_rounds": 1}})


@pytest.mark.parametrize("name, momentum", [("adam", None), ("adamw", None), ("sgd", 0.8)])
def test_the_optimizer_setting_is_honoured(name, momentum):
    options = {"optimizer": name, "learning_rate": 0.01, **({"momentum": momentum} if momentum else {})}
    optimizer = make_optimizer(_with_train(**options), 100, 3)
    assert type(optimizer) is {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                               "sgd": keras.optimizers.SGD}[name]
    assert float(optimizer.learning_rate) == pytest.approx(0.01)
    if momentum:
        assert optimizer.momentum == pytest.approx(momentum)


def test_cosine_schedule_decays_to_zero_over_the_planned_steps():
    assert float(make_optimizer(_with_train(), 100, 3).learning_rate) == pytest.approx(1e-3)
    schedule = keras.saving.deserialize_keras_object(make_optimizer(_with_train(lr_schedule="cosine"), 100, 3, mosaic=2)
                                                     .get_config()["learning_rate"])
    # 100 patches -> 25 mosaics of 2×2, batches of 16 // 4 = 4 mosaics: 7 batches an epoch, 21 steps
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay) and schedule.decay_steps == 21
    assert float(schedule(0)) == pytest.approx(1e-3) and float(schedule(21)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.slow
def test_a_self_training_round_runs_after_spss_and_resumes(tmp_path, fake_dubai, tiny_recipe):
    recipe = load_recipe(str(tiny_recipe("spss")))
    recipe["model"]["base_filters"] = 4
    recipe["train"].update(epochs=1, self_train_rounds=1, self_train_epochs=2, self_train_confidence=0.2, smoothness=0.1,
                           lr_schedule="cosine")
    out = tmp_path / "out"
    results = run_recipe(recipe, data=fake_dubai, out=out, verbose=0, echo=lambda *_: None)
    seed = results["per_seed"][0]
    assert seed["epochs"] == 1 and seed["self_train_1_epochs"] >= 1
    test_masks = held_out_masks(read_dubai(fake_dubai, patch_size=32))
    assert_scores_match_confusion(seed, test_masks, prefix="before_self_train_")  # scored before the round
    assert_scores_match_confusion(seed, test_masks)
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
