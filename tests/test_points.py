"""Method "points" (kerasweak/methods/points.py): a segmenter trained from keypoints only, written by docs/adding-a-method.md."""

import json

import numpy as np
import pytest

from kerasweak import losses
from kerasweak.data import synthetic_patches
from kerasweak.errors import KerasweakError
from kerasweak.methods import get_method
from kerasweak.recipe import load_recipe, normalise_recipe
from helpers import kerasweak


def _recipe(**keypoints):
    return normalise_recipe({"name": "r", "dataset": "aerial-dubai", "method": "points", "keypoints": keypoints})


def test_points_train_on_the_keypoint_maps_alone_with_the_keypoint_loss():
    patches = synthetic_patches(n=3, size=16, num_classes=3)
    method = get_method("points")
    targets = method.targets(patches, _recipe(k=2, seed=1))
    labels, weights = np.split(targets, 2, axis=-1)
    # k = 2 points of each class present in a patch, each a single pixel (radius 0), labelled with its mask's class
    present = np.stack([(patches.masks == c).any(axis=(1, 2)) for c in range(3)], axis=1)
    np.testing.assert_array_equal(weights.sum(axis=(1, 2)), 2 * present)  # channel c: the points of class c
    annotated = weights.max(axis=-1) > 0
    np.testing.assert_array_equal(labels[annotated].argmax(-1), patches.masks[annotated])
    assert isinstance(method.loss(_recipe()), losses.KeypointLoss) and method.loss_weights(_recipe()) is None


def test_points_take_the_sampling_settings_but_not_spss_plus_alpha():
    assert load_recipe("em-points")["keypoints"]["k"] == {"Background": 60, "Mitochondria": 10}
    with pytest.raises(KerasweakError, match=r"^r: \[keypoints\] alpha: unknown key; known: k, radius"):
        _recipe(alpha=0.5)


@pytest.mark.slow
def test_em_points_trains_through_the_cli_and_resumes(tmp_path, fake_epfl, tiny_recipe):
    recipe = tiny_recipe(extends="em-points", name="tiny-points", train={"epochs": 1})
    out = tmp_path / "out"
    run = lambda: kerasweak("recipe", recipe, "--data", fake_epfl.parent, "--out", out, "--max-samples", 12, cwd=tmp_path)
    result = run()
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "model" / "kerasweak.json").read_text())["method"] == "points"
    again = run()
    assert again.returncode == 0 and "seed 0: finished earlier, skipping" in again.stdout
    assert json.loads((out / "results.json").read_text())["per_seed"][0]["epochs"] == 1.0
