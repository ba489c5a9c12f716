"""Forward + backward time of each SPSS signal beyond eq. 1, against eq. 1's MSE and a whole SPSS training step.

Times each loss's value and its gradient with respect to the logits, on
16 × 224² × 6 class maps (an SPSS batch), calls interleaved in one process, and
prints each one's time as a share of an SPSS training step of the dubai-spss
U-Net (16 filters) on a batch of the same size, timed in the same rounds:

    python benchmarks/signal_time.py --steps 5

"pseudo-labels" is the proportion-matching Sinkhorn labelling (50 iterations,
temperature 0.1) plus the cross-entropy against it, the option whose epochs
looked 2.5-3 times plain SPSS's in results/dubai-spss-few-bags. Its Sinkhorn
(kerasweak.ops.proportions.sinkhorn_plan) takes one exponential pass over the
(B, P, C) plan an iteration; "pseudo-labels, two passes" is the same labelling
with the textbook two logsumexps an iteration, timed beside it for the ratio.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras import ops  # noqa: E402

from kerasweak import losses, models, proportion_losses  # noqa: E402
from timing import interleaved_call_medians, random_proportion_batch, traced_loss_gradient  # noqa: E402  (benchmarks/timing.py)

NUM_CLASSES = 6


def two_pass_pseudo_label_cross_entropy(rho, maps, temperature=0.1, iterations=50):
    """pseudo_label_cross_entropy with the textbook Sinkhorn: a logsumexp over classes, then one over pixels."""
    batch, height, width, classes = maps.shape
    log_kernel = ops.log(ops.clip(ops.reshape(maps, (batch, height * width, classes)), 1e-7, 1.0)) / temperature
    log_mass = ops.log(ops.maximum(rho * height * width, 0.0))[:, None, :]
    column = ops.zeros_like(log_mass)
    for _ in range(iterations):
        row = -ops.logsumexp(log_kernel + column, axis=2, keepdims=True)
        column = log_mass - ops.logsumexp(log_kernel + row, axis=1, keepdims=True)
    labels = ops.stop_gradient(ops.reshape(ops.cast(ops.argmax(log_kernel + row + column, axis=-1), "int32"), (batch, height, width)))
    return losses.pixel_cross_entropy(labels, maps)


SIGNALS = {
    "mse (eq. 1)": lambda rho, maps: losses.proportion_mse(rho, tf.reduce_mean(maps, axis=(1, 2))),
    "interval": lambda rho, maps: proportion_losses.interval_barrier(rho, tf.reduce_mean(maps, axis=(1, 2))),
    "pseudo-labels": proportion_losses.pseudo_label_cross_entropy,
    "pseudo-labels, two passes": two_pass_pseudo_label_cross_entropy,
    "absent + present classes": lambda rho, maps: proportion_losses.class_presence(rho, maps, 1.0, 1.0),
    "entropy": proportion_losses.mean_pixel_entropy,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="interleaved rounds; medians are printed")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    images, proportions = random_proportion_batch(args.batch, NUM_CLASSES)
    logits = tf.Variable(np.random.default_rng(1).normal(size=(args.batch, 224, 224, NUM_CLASSES)).astype("float32"))
    calls = {name: traced_loss_gradient(fn, tf.constant(proportions), logits) for name, fn in SIGNALS.items()}
    model = models.build_spss(models.build_unet(NUM_CLASSES, base_filters=16))
    model.compile(optimizer="adam", loss=losses.ProportionLoss())
    model.train_on_batch(images, proportions)
    training_step = lambda: (tf.constant(model.train_on_batch(images, proportions)),)  # noqa: E731
    medians = interleaved_call_medians({"SPSS training step": training_step, **calls}, args.steps)
    step = medians["SPSS training step"]
    for name, seconds in medians.items():
        print(f"{name:26s} {seconds:.3f} s   share of an SPSS step {seconds / step:.3f}")
    print(f"pseudo-labels: two passes / one pass {medians['pseudo-labels, two passes'] / medians['pseudo-labels']:.2f}")
    print(f"(batch {args.batch}, 224², {NUM_CLASSES} classes, float32, median of {args.steps} interleaved rounds)")


if __name__ == "__main__":
    main()
