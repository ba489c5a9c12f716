"""kerasweak.training: a resumed stage stops early where an uninterrupted one would (against Keras's own EarlyStopping)."""

import keras
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak.training import ResumedEarlyStopping, patience_exhausted

MODEL = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])


def stopping_epoch(callback, values, first_epoch=0):
    """The epoch at which `callback` stops a run logging `values` from `first_epoch` on; None if it never does."""
    MODEL.stop_training = False
    callback.set_model(MODEL)
    callback.on_train_begin()
    for epoch, value in enumerate(values, start=first_epoch):
        callback.on_epoch_end(epoch, {"val_loss": value})
        if MODEL.stop_training:
            return epoch
    return None


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.4, 0.5]), min_size=2, max_size=30),
       patience=st.integers(1, 6), mode=st.sampled_from(["min", "max"]), data=st.data())
def test_resumed_run_stops_where_uninterrupted_run_stops(values, patience, mode, data):
    uninterrupted = stopping_epoch(keras.callbacks.EarlyStopping(monitor="val_loss", mode=mode, patience=patience), values)
    last_logged = len(values) if uninterrupted is None else uninterrupted
    resume_at = data.draw(st.integers(1, last_logged), label="epochs logged before the resume")
    resumed = ResumedEarlyStopping(values[:resume_at], monitor="val_loss", mode=mode, patience=patience)
    assert stopping_epoch(resumed, values[resume_at:], first_epoch=resume_at) == uninterrupted


def test_plain_early_stopping_restarts_its_count_at_a_resume():
    """The behaviour ResumedEarlyStopping exists to fix: without the history, the resumed run trains on past the stop."""
    values = [0.1, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert stopping_epoch(keras.callbacks.EarlyStopping(patience=3), values) == 3
    assert stopping_epoch(keras.callbacks.EarlyStopping(patience=3), values[2:], first_epoch=2) == 5
    assert stopping_epoch(ResumedEarlyStopping(values[:2], patience=3), values[2:], first_epoch=2) == 3


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.4, 0.5]), min_size=1, max_size=30),
       patience=st.integers(1, 6), mode=st.sampled_from(["min", "max"]))
def test_a_stage_killed_after_its_early_stop_is_not_trained_further(values, patience, mode):
    """A log ending with the epoch Keras's EarlyStopping stopped at (killed before done.json) trains no more; others do."""
    uninterrupted = stopping_epoch(keras.callbacks.EarlyStopping(monitor="val_loss", mode=mode, patience=patience), values)
    last_logged = len(values) if uninterrupted is None else uninterrupted + 1
    for logged in range(last_logged + 1):
        assert patience_exhausted(values[:logged], patience, mode) == (logged - 1 == uninterrupted)
