"""kerasweak.schedules: warm-up and cosine rates at hand-computed steps, and a resumed run continuing its schedule."""

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak.backup import resume, save_weights
from kerasweak.recipe import load_recipe, with_overrides
from kerasweak.schedules import ONE_CYCLE_END, ONE_CYCLE_START, WarmupCosine
from kerasweak.training import make_optimizer


@settings(max_examples=40, deadline=None)
@given(total=st.integers(4, 5000), warmup_share=st.floats(0, 0.9), start=st.sampled_from([0.0, ONE_CYCLE_START]),
       end=st.sampled_from([0.0, ONE_CYCLE_END]))
def test_the_rate_rises_linearly_to_the_peak_then_falls_by_a_half_cosine(total, warmup_share, start, end):
    warmup, peak = int(warmup_share * total), 3e-3
    schedule = WarmupCosine(peak, total, warmup_steps=warmup, start=start, end=end)
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == pytest.approx(peak if warmup == 0 else start * peak, rel=1e-5)
    if warmup >= 2:
        half = warmup // 2
        assert rate(half) == pytest.approx(peak * (start + (1 - start) * half / warmup), rel=1e-5)
    assert rate(warmup) == pytest.approx(peak, rel=1e-5)
    middle, falling = (warmup + total) / 2, total - warmup
    assert rate(middle) == pytest.approx(peak * (end + (1 - end) * (1 + math.cos(math.pi * (middle - warmup) / falling)) / 2),
                                         rel=1e-4)
    assert rate(total) == pytest.approx(end * peak, abs=1e-9) and rate(total + 10) == pytest.approx(end * peak, abs=1e-9)


def _recipe(**train):
    recipe = load_recipe("dubai-spss")
    return with_overrides(recipe, {"train": {"batch_size": 4, **train}})


@pytest.mark.parametrize("name, warmup, start, end", [("warmup-cosine", 2 * 5, 0.0, 0.0),
                                                      ("one-cycle", round(0.25 * 50), ONE_CYCLE_START, ONE_CYCLE_END)])
def test_the_schedules_plan_their_steps_from_the_recipe(name, warmup, start, end):
    # 20 patches in batches of 4: 5 steps an epoch, 10 epochs: 50 planned steps
    optimizer = make_optimizer(_recipe(lr_schedule=name, warmup_epochs=2, learning_rate=0.01), 20, 10)
    schedule = keras.saving.deserialize_keras_object(optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, WarmupCosine)
    assert schedule.get_config() == {"peak": 0.01, "total_steps": 50, "warmup_steps": warmup, "start": start, "end": end}


def _tiny_model(recipe):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(recipe, 20, 10), loss="mse")
    return model


@pytest.mark.parametrize("name", ["warmup-cosine", "one-cycle"])
def test_a_resumed_run_continues_the_schedule_at_its_step(tmp_path, name):
    recipe = _recipe(lr_schedule=name, warmup_epochs=2)
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.zeros((20, 1))
    uninterrupted = _tiny_model(recipe)
    uninterrupted.fit(x, y, batch_size=4, epochs=3, verbose=0)  # 15 steps
    rates = [float(uninterrupted.optimizer.learning_rate)]
    uninterrupted.fit(x, y, batch_size=4, epochs=2, verbose=0)
    rates.append(float(uninterrupted.optimizer.learning_rate))

    killed = _tiny_model(recipe)
    killed.fit(x, y, batch_size=4, epochs=3, verbose=0)
    save_weights(killed, tmp_path / "backup" / "epoch_3.weights.h5")
    resumed = _tiny_model(recipe)
    assert resume(resumed, tmp_path / "backup", tmp_path / "log.csv", echo=lambda *_: None) == 3
    assert int(resumed.optimizer.iterations) == 15
    assert float(resumed.optimizer.learning_rate) == pytest.approx(rates[0], rel=1e-6)
    resumed.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert float(resumed.optimizer.learning_rate) == pytest.approx(rates[1], rel=1e-6)
    assert rates[0] != pytest.approx(rates[1])
