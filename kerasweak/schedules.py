"""Learning-rate schedules of [train] lr_schedule, over the planned steps (epochs × batches an epoch).

"constant" keeps `learning_rate`; "cosine" is Keras's CosineDecay to 0;
"warmup-cosine" rises linearly from 0 to `learning_rate` over `warmup_epochs`,
then falls by a half cosine to 0; "one-cycle" takes fastai's fit_one_cycle rates
(from learning_rate/25 up over the first quarter of the steps, down to
learning_rate/250000), without its momentum cycle. The schedules are functions
of the optimizer's step count, which the kill-safe backups restore
(kerasweak.backup), so a resumed run continues the schedule where it stopped.
"""

import math

import keras

LR_SCHEDULES = ("constant", "cosine", "warmup-cosine", "one-cycle")
ONE_CYCLE_WARMUP = 0.25  # fastai's pct_start
ONE_CYCLE_START = 1 / 25  # fastai's div
ONE_CYCLE_END = 1 / 25e4  # fastai's div × final_div


@keras.saving.register_keras_serializable(package="kerasweak")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `start` × `peak` to `peak` over `warmup_steps`, then a half cosine to `end` × `peak`.

    The cosine ends at `total_steps`; past it the rate stays at `end` × `peak`.
    """

    def __init__(self, peak, total_steps, warmup_steps=0, start=0.0, end=0.0):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)
        self.start, self.end = float(start), float(end)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        rising = self.start + (1 - self.start) * step / warmup
        done = keras.ops.clip((step - self.warmup_steps) / float(max(self.total_steps - self.warmup_steps, 1)), 0.0, 1.0)
        falling = self.end + (1 - self.end) * 0.5 * (1 + keras.ops.cos(math.pi * done))
        return self.peak * keras.ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "start": self.start, "end": self.end}


def learning_rate(name, peak, steps_per_epoch, epochs, warmup_epochs=0):
    """The optimizer's rate for lr_schedule `name`: `peak` ("constant"), or a schedule over epochs × steps_per_epoch."""
    total = max(1, epochs * steps_per_epoch)
    if name == "constant":
        return peak
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=total)
    if name == "warmup-cosine":
        return WarmupCosine(peak, total, warmup_steps=min(warmup_epochs * steps_per_epoch, total))
    if name == "one-cycle":
        return WarmupCosine(peak, total, warmup_steps=round(ONE_CYCLE_WARMUP * total), start=ONE_CYCLE_START,
                            end=ONE_CYCLE_END)
    raise ValueError(f"unknown lr_schedule {name!r}; known: {', '.join(LR_SCHEDULES)}")
