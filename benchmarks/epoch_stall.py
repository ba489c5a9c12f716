"""Epoch time of `model.fit` on kerasweak's input pipeline, with tf.data autotuning off (as shipped) and on.

With autotuning on, Keras's deletion of each epoch's iterator stalls for about
11 s every few epochs while tf.data's autotune thread shuts down. The stall
shows only when steps take as long as real ones, so the model here is tiny and
a callback sleeps `--step-seconds` after every batch in place of a U-Net step
(0.4 s is a 16-filter U-Net step at 224², batch 16, bf16, on this CPU). The
data is the size of Aerial Dubai's training split (1185 patches of 224² RGB),
shuffled by epoch as the recipes do. The two fits run one after the other in
one process:

    python benchmarks/epoch_stall.py                    # 8 epochs each, about 9 minutes
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweak.data import make_dataset  # noqa: E402
from kerasweak.data.pipeline import EpochCounter  # noqa: E402
from kerasweak.training import EpochTimer  # noqa: E402  (the recipes' epoch_seconds)


class StepStandIn(keras.callbacks.Callback):
    """Sleeps after each batch, standing in for the compute of a real training step."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def epoch_seconds(images, proportions, autotune, epochs, step_seconds):
    """Seconds of each epoch of a fit on make_dataset's batches, autotuning as asked."""
    counter = EpochCounter()
    data = make_dataset(images, proportions, 16, shuffle=True, seed=0, epoch=counter.epoch)
    if autotune:
        options = tf.data.Options()
        options.autotune.enabled = True
        data = data.with_options(options)
    model = keras.Sequential([keras.Input(images.shape[1:]), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(proportions.shape[1], activation="softmax")])
    model.compile("adam", "mse")
    history = model.fit(data, epochs=epochs, callbacks=[counter, StepStandIn(step_seconds), EpochTimer()],
                        shuffle=False, verbose=0)
    return np.array(history.history["epoch_seconds"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--step-seconds", type=float, default=0.4)
    parser.add_argument("--patches", type=int, default=1185)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.patches, 224, 224, 3), dtype=np.uint8)
    proportions = rng.dirichlet(np.ones(6), args.patches).astype("float32")
    results = {name: epoch_seconds(images, proportions, autotune, args.epochs, args.step_seconds)
               for name, autotune in (("autotune off", False), ("autotune on", True))}
    floor = min(seconds.min() for seconds in results.values())
    for name, seconds in results.items():
        stalled = int(np.sum(seconds > floor + 2.0))
        print(f"{name:13s} epochs {' '.join(f'{s:.1f}' for s in seconds)} s; mean {seconds.mean():.2f} s, "
              f"{stalled} of {len(seconds)} epochs over {floor + 2.0:.1f} s")
    ratio = results["autotune on"].mean() / results["autotune off"].mean()
    print(f"mean epoch, on/off = {ratio:.3f} ({args.patches} patches, batch 16, {args.step_seconds} s a step)")


if __name__ == "__main__":
    main()
