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

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweak import layers, losses  # noqa: E402
from timing import interleaved_call_medians, traced_loss_gradient  # noqa: E402  (benchmarks/timing.py)

NUM_CLASSES = 6
LAMBDAS = ((4.0, 0.0, 0.0), (4.0, 2.0, 0.0), (4.0, 2.0, 1.0))


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
    steps = {"ce": traced_loss_gradient(losses.pixel_cross_entropy, labels, logits)}
    for lambdas in LAMBDAS:
        for policy in ("float32", "mixed_bfloat16"):
            steps[f"{policy:15s} λ = {lambdas}"] = traced_loss_gradient(
                lambda y, p, lambdas=lambdas: losses.semeda_loss(y, p, edge_net, lambdas), labels, logits, policy)
    medians = interleaved_call_medians(steps, args.steps)
    for name, seconds in medians.items():
        print(f"{name:42s} {seconds:.3f} s   minus ce {seconds - medians['ce']:.3f} s")
    print(f"(batch {args.batch}, 224², {NUM_CLASSES} classes, median of {args.steps} interleaved calls)")


if __name__ == "__main__":
    main()
