"""Forward + backward time of the SEMEDA loss alone, by edge-net depth and policy, against per-pixel CE.

Times the loss value and its gradient with respect to the class maps, on the
maps of a step_time.py batch (16 × 224² × 6 classes), calls interleaved:

    python benchmarks/loss_time.py --steps 7

λ = (4, 0, 0), (4, 2, 0), (4, 2, 1) run g_φ to layer 1, 2 and 3; "minus ce" is
what the edge term adds to a training step.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweak import layers, losses  # noqa: E402
from timing import interleaved_call_medians  # noqa: E402  (benchmarks/timing.py)

NUM_CLASSES = 6
LAMBDAS = ((4.0, 0.0, 0.0), (4.0, 2.0, 0.0), (4.0, 2.0, 1.0))


def _timed_step(loss_fn, policy, labels, logits):
    """A traced step returning the batch-mean loss and its gradient, the loss traced under `policy`."""
    keras.mixed_precision.set_global_policy(policy)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(labels, tf.nn.softmax(logits)))
        return loss, tape.gradient(loss, logits)

    step()
    keras.mixed_precision.set_global_policy("float32")
    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    logits = tf.Variable(rng.normal(size=(args.batch, 224, 224, NUM_CLASSES)).astype("float32"))
    labels = tf.Variable(rng.integers(0, NUM_CLASSES, (args.batch, 224, 224)).astype("int32"))
    edge_net = layers.SemedaNet(NUM_CLASSES)
    edge_net.build((None, None, None, NUM_CLASSES))
    edge_net.trainable = False
    steps = {"ce": _timed_step(losses.pixel_cross_entropy, "float32", labels, logits)}
    for lambdas in LAMBDAS:
        for policy in ("float32", "mixed_bfloat16"):
            steps[f"{policy:15s} λ = {lambdas}"] = _timed_step(
                lambda y, p, lambdas=lambdas: losses.semeda_loss(y, p, edge_net, lambdas), policy, labels, logits)
    medians = interleaved_call_medians(steps, args.steps)
    for name, seconds in medians.items():
        print(f"{name:42s} {seconds:.3f} s   minus ce {seconds - medians['ce']:.3f} s")
    print(f"(batch {args.batch}, 224², {NUM_CLASSES} classes, median of {args.steps} interleaved calls)")


if __name__ == "__main__":
    main()
