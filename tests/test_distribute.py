"""Training under tf.distribute (`--strategy`): two replicas train as one device does; bad strategy input is refused.

The two-replica runs (tests/two_replica_runs.py) need two logical CPU devices,
which must be configured before TensorFlow initialises its devices, so they run
once in their own process. Each trains a tiny model (U-Net with base_filters 4,
32×32 inputs, float32, 8 images, global batch 4, 2 epochs, Adam 1e-2, fixed batch
order) from the same initial weights on one device and under MirroredStrategy
with 2 replicas (2 images each).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasweak.data import read_dubai
from kerasweak.distribute import distribution_strategy
from kerasweak.errors import KerasweakError
from helpers import assert_clean_error, assert_scores_match_confusion, assert_summary_of_seeds, held_out_masks, kerasweak

LOSS_RTOL = 1e-4  # float32: summing over replicas instead of over one batch reorders the additions
WEIGHT_ATOL = 1e-4  # largest |difference| of any final weight; measured ≤ 2e-6


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory):
    """(figures the script prints, its work folder): per-epoch logs, final weight differences, a mirrored recipe's OUT."""
    workdir = tmp_path_factory.mktemp("two_replicas")
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("two_replica_runs.py")), str(workdir)],
                            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1]), workdir


def assert_same_logs(one_device, two_replicas):
    assert set(two_replicas) == set(one_device)
    for name, values in one_device.items():
        np.testing.assert_allclose(two_replicas[name], values, rtol=LOSS_RTOL, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["spss", "pixel"])
def test_two_replicas_give_the_losses_of_one_device(two_replicas, kind):
    """SPSS with ProportionLoss and the per-pixel CE U-Net: Keras divides each replica's mean loss by the replicas."""
    figures = two_replicas[0]
    assert figures["replicas"] == 2
    assert_same_logs(figures[kind]["one_device"], figures[kind]["two_replicas"])
    assert len(figures[kind]["one_device"]["loss"]) == 2
    assert figures[kind]["two_replicas_max_weight_difference"] < WEIGHT_ATOL


@pytest.mark.slow
def test_the_size_train_step_on_two_replicas_equals_one_device_with_the_same_noise(two_replicas):
    """SizeSupervisedSegmenter's own train_step on two replicas.

    Its gradient is sampled, so the runs can only agree if they draw the same
    noise. Each replica draws the noise of the whole global batch from the shared
    seed and keeps its own rows, so with the same seed the two replicas together
    use exactly one device's draws: every logged figure (loss, mask_loss,
    size_error and iou, Keras Means aggregated over the replicas) agrees per epoch within LOSS_RTOL and the final weights within WEIGHT_ATOL.
    The control (another seed, other noise) shows the comparison sees the noise:
    its weights and its continuous mask_loss move far beyond those tolerances.
    Had replica 1 reused replica 0's rows of noise, it would differ the same way.
    """
    sizes = two_replicas[0]["sizes"]
    assert_same_logs(sizes["one_device"], sizes["two_replicas"])
    assert sizes["two_replicas_max_weight_difference"] < WEIGHT_ATOL
    assert sizes["other_noise_max_weight_difference"] > 100 * WEIGHT_ATOL
    one, other = sizes["one_device"]["mask_loss"][-1], sizes["other_noise"]["mask_loss"][-1]
    assert abs(other - one) > 100 * LOSS_RTOL * one


@pytest.mark.slow
def test_a_recipe_runs_mirrored_end_to_end(two_replicas):
    """run_recipe(..., strategy="mirrored") on fake Aerial Dubai data: the SPSS recipe trains, scores and exports."""
    out = two_replicas[1] / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == 1
    data = two_replicas[1] / "data" / "Semantic segmentation dataset"
    assert_scores_match_confusion(results["per_seed"][0], held_out_masks(read_dubai(data, patch_size=32)))
    assert_summary_of_seeds(results)
    assert (out / "model" / "kerasweak.json").exists() and (out / "seed_0" / "model.keras").exists()


def test_no_strategy_is_the_default_strategy():
    import tensorflow as tf

    assert distribution_strategy(None) is tf.distribute.get_strategy() is distribution_strategy("none")


@pytest.mark.parametrize("name, tf_config, message", [
    ("ring", None, "unknown strategy 'ring'; known: none, mirrored, multiworker"),
    ("multiworker", None, "--strategy multiworker needs $TF_CONFIG"),
    ("multiworker", '{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG must be JSON like"),
    ("multiworker", '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "TF_CONFIG must be JSON"),
    ("multiworker", "worker 0", "TF_CONFIG must be JSON like"),
])
def test_bad_strategy_input_is_a_one_line_error(monkeypatch, name, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(KerasweakError, match=message.replace("$", r"\$")):
        distribution_strategy(name)


@pytest.mark.slow
def test_the_cli_refuses_multiworker_without_tf_config(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = kerasweak("recipe", "dubai-spss", "--strategy", "multiworker", cwd=tmp_path)
    assert result.returncode == 2
    assert_clean_error(result, "needs $TF_CONFIG")
