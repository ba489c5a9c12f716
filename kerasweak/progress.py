"""A whole-run ETA: after the first epochs of a stage, one line with the time left for the seed and for the run.

Keras's progress bar estimates the current epoch only. `RunEta` adds, after
`after_epochs` epochs of a stage, the most time the stage can still take (its
remaining epochs at the mean epoch time so far: early stopping often ends it
sooner) and the same bound for the seeds still to train after this one. The
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
    so the line says "this stage". `clock` is replaceable for tests.
    """

    def __init__(self, epochs, after_epochs=2, clock=time.monotonic):
        super().__init__()
        self.epochs, self.after_epochs, self.clock = epochs, after_epochs, clock
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(self.clock() - self.started)
        run = _SEED.get()
        if len(self.seconds) != self.after_epochs or run is None:
            return
        per_epoch = sum(self.seconds) / len(self.seconds)
        stage_left = per_epoch * (self.epochs - epoch - 1)
        later = run["later_seeds"] * per_epoch * self.epochs
        run_part = (f"; at most {duration(stage_left + later)} for the run's {run['later_seeds']} later seed"
                    f"{'s' if run['later_seeds'] > 1 else ''} too") if run["later_seeds"] else ""
        run["echo"](f"seed {run['seed']}: epoch {epoch + 1}/{self.epochs} at {per_epoch:.0f} s an epoch; at most "
                    f"{duration(stage_left)} left for this stage (early stopping usually ends it sooner){run_part}")
