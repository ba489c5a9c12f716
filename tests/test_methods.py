"""The method registry: SEMEDA, Sobel and PPCE recipes train through the CLI with their recipe's settings."""

import json

import keras
import numpy as np
import pytest

from kerasweak import losses
from kerasweak.errors import KerasweakError
from kerasweak.layers import ReflectPadding2D
from kerasweak.methods import get_method
from kerasweak.recipe import fingerprint, load_recipe, normalise_recipe
from helpers import kerasweak


def _loss(out, seed=0):
    return keras.saving.load_model(out / f"seed_{seed}" / "model.keras").loss


@pytest.mark.slow
def test_semeda_trains_with_one_frozen_cached_edge_net_per_run_and_the_recipes_lambdas(edge_runs):
    out = edge_runs["dubai-semeda"]
    edge_net = keras.saving.load_model(out / "semeda-aerial-dubai-6classes.keras").get_layer("semeda")
    assert not edge_net.trainable and edge_net.num_classes == 6
    for seed in (0, 1):  # both seeds compiled SemedaLoss around the cached g_φ, unchanged by training
        loss = _loss(out, seed)
        assert isinstance(loss, losses.SemedaLoss) and loss.lambdas == (2.0, 1.0, 0.5)
        for trained, cached in zip(loss.edge_net.get_weights(), edge_net.get_weights()):
            np.testing.assert_array_equal(trained, cached)
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == 2 and results["config"]["recipe"]["semeda"]["edge_epochs"] == 1


@pytest.mark.slow
def test_sobel_and_ppce_train_with_their_losses(edge_runs):
    sobel = _loss(edge_runs["dubai-sobel"])
    assert isinstance(sobel, losses.SobelEdgeLoss) and sobel.lam == 2.0
    assert isinstance(_loss(edge_runs["dubai-ppce"]), losses.PixelCrossEntropy)


def test_dubai_ppce_is_dubai_benchmark_under_another_name():
    ppce, benchmark = load_recipe("dubai-ppce"), load_recipe("dubai-benchmark")
    assert fingerprint(ppce) == fingerprint(benchmark)
    assert ppce["evaluation"] == benchmark["evaluation"] and ppce["label"] == "PPCE (kerasweak)"


def _minimal(method, **sections):
    return {"name": "my-recipe", "dataset": "aerial-dubai", "method": method, **sections}


def test_settings_defaults_are_the_papers_best():
    assert normalise_recipe(_minimal("semeda"))["semeda"]["lambdas"] == [4.0, 2.0, 0.0]
    assert normalise_recipe(_minimal("sobel"))["sobel"]["weight"] == 4.0
    assert load_recipe("em-semeda")["semeda"]["lambdas"] == [4, 2, 0]


@pytest.mark.parametrize("method", ["pixel", "spss", "spss_plus", "semeda"])
def test_model_padding_reaches_every_methods_segmenter(method):
    for padding, pads in (("zeros", 0), ("reflect", 18)):  # 18 = the U-Net's 3×3 convolutions
        recipe = normalise_recipe(_minimal(method, model={"base_filters": 2, "padding": padding}))
        segmenter = get_method(method).segmenter(6, recipe, 3)
        assert sum(isinstance(layer, ReflectPadding2D) for layer in segmenter.layers) == pads
    with pytest.raises(KerasweakError, match=r"^my-recipe: \[model\] padding must be one of"):
        normalise_recipe(_minimal(method, model={"padding": "same"}))
    with pytest.raises(KerasweakError, match=r"padding = \"reflect\" needs patch sides of at least 32.*\[16, 64\]"):
        normalise_recipe(_minimal(method, data={"patch_size": [16, 64]}, model={"padding": "reflect"}))


def test_coarse_epochs_become_a_coarse_start_of_that_many_steps_and_need_poolable_patches():
    recipe = normalise_recipe(_minimal("spss", data={"patch_size": 256}, model={"base_filters": 2},
                                       train={"coarse_epochs": 3, "coarse_factor": 4}))
    coarse = get_method("spss").build(6, recipe, 3, steps_per_epoch=7).get_layer("coarse_start")
    assert (coarse.factor, coarse.steps) == (4, 21)
    with pytest.raises(KerasweakError, match=r"coarse_factor = 2 needs patch sides that are multiples of 32.*\[48, 64\]"):
        normalise_recipe(_minimal("spss", data={"patch_size": [48, 64]}, train={"coarse_epochs": 3}))
    with pytest.raises(KerasweakError, match=r"\[train\] coarse_epochs is a setting of method spss, not of spss_plus"):
        normalise_recipe(_minimal("spss_plus", train={"coarse_epochs": 3}))


@pytest.mark.parametrize("method, section, message", [
    ("semeda", {"semeda": {"lamdas": [1, 1, 0]}},
     r"^my-recipe: \[semeda\] lamdas: unknown key \(did you mean `lambdas`\?\); known: lambdas, "),
    ("semeda", {"semeda": {"lambdas": [1, 1]}}, r"^my-recipe: \[semeda\] lambdas must be a list of 3 items, got \[1, 1\]"),
    ("semeda", {"semeda": {"lambdas": [1, -1, 0]}}, r"^my-recipe: \[semeda\] lambdas item -1: must be >= 0"),
    ("semeda", {"semeda": {"edge_epochs": 0}}, r"^my-recipe: \[semeda\] edge_epochs must be >= 1, got 0"),
    ("sobel", {"sobel": {"lambda": 4}}, r"^my-recipe: \[sobel\] lambda: unknown key; known: weight"),
    ("sobel", {"sobel": {"weight": "4"}}, r"^my-recipe: \[sobel\] weight must be a number, got '4'"),
    ("pixel", {"sobel": {"weight": 4}}, r"^my-recipe: \[sobel\] is a section of method sobel, not of pixel"),
])
def test_bad_section_keys_are_one_line_errors_naming_the_recipe(method, section, message):
    with pytest.raises(KerasweakError, match=message) as error:
        normalise_recipe(_minimal(method, **section))
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_em_semeda_trains_a_two_class_edge_net_for_the_single_sigmoid_output(tmp_path, fake_epfl, tiny_recipe):
    recipe = tiny_recipe(extends="em-semeda", name="tiny-em", train={"epochs": 1}, semeda={"edge_epochs": 1})
    out = tmp_path / "out"
    result = kerasweak("recipe", recipe, "--data", fake_epfl.parent, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    edge_net = keras.saving.load_model(out / "semeda-epfl-em-2classes.keras").get_layer("semeda")
    loss = _loss(out)
    assert edge_net.num_classes == 2 and loss.edge_net.num_classes == 2 and loss.lambdas == (4.0, 2.0, 0.0)
    metrics = json.loads((out / "seed_0" / "metrics.json").read_text())
    assert list(metrics["e_measure_per_class"]) == ["Background", "Mitochondria"]
    assert "| Mean accuracy | E-measure | Seconds/seed |" in (out / "results.md").read_text()
