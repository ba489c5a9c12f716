"""kerasweak.training: a resumed stage stops early where an uninterrupted one would (against Keras's own EarlyStopping);
validation every k epochs."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak import errors
from kerasweak.io import csv_column
from kerasweak.training import ResumedEarlyStopping, fit_stage, patience_exhausted, validated_epochs

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


def test_epochs_without_validation_neither_count_towards_patience_nor_warn(recwarn):
    """With validation every k epochs, patience counts validations; an epoch without val_loss leaves the count as it is."""
    callback = ResumedEarlyStopping(monitor="val_loss", patience=2)
    MODEL.stop_training = False
    callback.set_model(MODEL)
    callback.on_train_begin()
    for epoch, value in enumerate([0.1, None, None, None, 0.5, None, None, 0.5]):
        callback.on_epoch_end(epoch, {"loss": 1.0} if value is None else {"loss": 1.0, "val_loss": value})
        if MODEL.stop_training:
            break
    assert epoch == 7 and not [w for w in recwarn if "Early stopping" in str(w.message)]


def test_validated_epochs_are_the_first_every_kth_after_it_and_the_last():
    assert validated_epochs(7, 3) == [1, 4, 7]
    assert validated_epochs(8, 3) == [1, 4, 7, 8]
    assert validated_epochs(4, 1) == [1, 2, 3, 4]


class AtEpochBegin(keras.callbacks.Callback):
    """Calls `action()` as epoch `epoch` (counted from 0) begins."""

    def __init__(self, epoch, action):
        super().__init__()
        self.epoch, self.action = epoch, action

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.action()


def interrupt():
    """What Ctrl-C does to a fit."""
    raise KeyboardInterrupt


def _validation_stage(stage_dir, callbacks=()):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices((rng.normal(size=(8, 3)), rng.normal(size=(8, 1)))).batch(4)
    return fit_stage(model, data, data, stage_dir, epochs=7, patience=5, verbose=0, callbacks=callbacks,
                     validation_every=3)


def test_a_stage_validating_every_third_epoch_logs_and_resumes_a_readable_log(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _validation_stage(tmp_path, [AtEpochBegin(4, interrupt)])  # resumes at epoch 5 (from 1), which does not validate
    assert _validation_stage(tmp_path)[1] == 7
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == list(range(7))
    assert [int(row["epoch"]) + 1 for row in rows if row["val_loss"]] == [1, 4, 7]
    assert all(row["loss"] and row["epoch_seconds"] for row in rows)
    assert len(csv_column(tmp_path / "log.csv", "val_loss")) == 3


class ReceivesSigterm:
    """SIGTERM's handler run inside a `__del__` (created and deleted at once): Python prints and drops its Terminated."""

    def __del__(self):
        errors.request_termination()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_sigterm_whose_exception_python_dropped_still_stops_the_stage_at_the_next_batch(tmp_path, monkeypatch):
    monkeypatch.setitem(errors._termination, "requested", False)  # restored after the test
    with pytest.raises(errors.Terminated):
        _validation_stage(tmp_path, [AtEpochBegin(2, ReceivesSigterm)])
    assert len(csv_column(tmp_path / "log.csv", "epoch_seconds")) == 2  # epochs 0 and 1 completed, epoch 2 did not
    with pytest.raises(errors.Terminated):
        errors.check_termination()  # and the CLI's last check would still exit 143
    errors._termination["requested"] = False
    assert _validation_stage(tmp_path)[1] == 7  # the rerun resumes and completes
