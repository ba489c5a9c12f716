"""A whole-run ETA: after the first epochs of a stage, one line with the time left for the seed and for the run.

Keras's progress bar estimates the current epoch only. `RunEta` adds, after
`after_epochs` epochs of a stage, the most time the stage can still take (its
remaining epochs at the mean training time of an epoch so far, plus its remaining
validations at the mean validation time: early stopping often ends it sooner)
and the same bound for the seeds still to train after this one. The
runner says which seed trains and how many follow (`seed_progress`);
`training.fit_stage` adds the callback.
"""

import contextlib
import contextvars
import time

import keras

_SEED = contextvars.ContextVar("kerasweak_seed_progress", default=None)


@contextlib.contextmanager
def seed_progress(seed, later_seeds, echo=print):
    """While training seed `seed`, with `later_seeds` more to train in this run, RunEta lines go to `echo`."""
    token = _SEED.set({"seed": seed, "later_seeds": later_seeds, "echo": echo})
    try:
        yield
    finally:
        _SEED.reset(token)


def duration(seconds):
    """Seconds as '45 s', '12 min' or '2 h 05 min'."""
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class RunEta(keras.callbacks.Callback):
    """Prints once, after `after_epochs` epochs of this fit, the most time left for the seed and for the run.

    `epochs` is the stage's maximum (the fit's `epochs`); `initial_epoch` where a
    resumed stage starts; later stages of a multi-stage method are not foreseen,
    so the line says "this stage". `validated`: the epochs (counted from 1) the
    stage validates on (default all; see training.validated_epochs), so a stage
    validating every k-th epoch is not foreseen at a validation each epoch.
    `clock` is replaceable for tests.
    """

    def __init__(self, epochs, after_epochs=2, clock=time.monotonic, validated=None):
        super().__init__()
        self.epochs, self.after_epochs, self.clock = epochs, after_epochs, clock
        self.validated = range(1, epochs + 1) if validated is None else validated
        self.seconds, self.validation_seconds = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = self.clock()

    def on_test_begin(self, logs=None):
        self.validation_started = self.clock()

    def on_test_end(self, logs=None):
        self.validation_seconds.append(self.clock() - self.validation_started)

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(self.clock() - self.started)
        run = _SEED.get()
        if len(self.seconds) != self.after_epochs or run is None:
            return
        per_epoch = sum(self.seconds) / len(self.seconds)
        per_training = (sum(self.seconds) - sum(self.validation_seconds)) / len(self.seconds)
        per_validation = sum(self.validation_seconds) / max(len(self.validation_seconds), 1)
        validations_left = sum(1 for e in self.validated if e > epoch + 1)
        stage_left = per_training * (self.epochs - epoch - 1) + per_validation * validations_left
        later = run["later_seeds"] * (per_training * self.epochs + per_validation * len(self.validated))
        run_part = (f"; at most {duration(stage_left + later)} for the run's {run['later_seeds']} later seed"
                    f"{'s' if run['later_seeds'] > 1 else ''} too") if run["later_seeds"] else ""
        run["echo"](f"seed {run['seed']}: epoch {epoch + 1}/{self.epochs} at {per_epoch:.0f} s an epoch; at most "
                    f"{duration(stage_left)} left for this stage (early stopping usually ends it sooner){run_part}")
