"""What g_φ's replicate padding costs: its layers 1-2 with an explicit replicate pad against zero "same" padding.

SemedaNet pads each layer's input by replicating the border (so the image border
never looks like an edge) and then convolves "valid"; a zero-padded "same"
convolution needs no padded copy of the input. This times, in one process with
calls interleaved, what SemedaLoss runs at the default λ = (4, 2, 0): layers 1
and 2 forward on a 16 × 224² × 6 batch of class maps, plus the gradient with
respect to the maps, and prints each padding's median and their ratio:

    python benchmarks/edge_padding.py --steps 7
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweak.layers import SemedaNet  # noqa: E402
from timing import interleaved_call_medians  # noqa: E402  (benchmarks/timing.py)

NUM_CLASSES = 6
DEPTH = 2  # the last layer with λ_l ≠ 0 at the default λ


def _zero_padded_embeddings(net, class_maps, dtype):
    """SemedaNet.embeddings' first DEPTH layers with zero "same" padding instead of the replicate pad."""
    x, embeddings = class_maps, []
    for conv in net.convs[:DEPTH]:
        x = tf.nn.relu(tf.nn.conv2d(x, tf.cast(conv.kernel, dtype), 1, "SAME") + tf.cast(conv.bias, dtype))
        embeddings.append(x)
    return embeddings


def _timed_pass(net, padding, class_maps, dtype):
    """A traced forward + input-gradient pass through the first DEPTH layers with the given padding."""

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(class_maps)
            if padding == "replicate":
                embeddings = net.embeddings(class_maps, DEPTH, dtype)
            else:
                embeddings = _zero_padded_embeddings(net, class_maps, dtype)
            total = sum(tf.reduce_mean(tf.cast(x, "float32")) for x in embeddings)
        return total, tape.gradient(total, class_maps)

    step()
    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    net = SemedaNet(NUM_CLASSES)
    net.build((None, None, None, NUM_CLASSES))
    rng = np.random.default_rng(0)
    maps = rng.dirichlet(np.ones(NUM_CLASSES), size=(args.batch, 224, 224)).astype("float32")
    passes = {}
    for dtype in ("float32", "bfloat16"):
        class_maps = tf.constant(maps, dtype=dtype)
        for padding in ("replicate", "zero"):
            passes[(dtype, padding)] = _timed_pass(net, padding, class_maps, dtype)
    medians = interleaved_call_medians(passes, args.steps)
    for (dtype, padding), seconds in medians.items():
        print(f"{dtype:9s} {padding:9s} {seconds:.3f} s")
    for dtype in ("float32", "bfloat16"):
        print(f"{dtype}: replicate / zero = {medians[(dtype, 'replicate')] / medians[(dtype, 'zero')]:.2f}")
    print(f"(layers 1-{DEPTH} forward + input gradient, batch {args.batch}, 224², {NUM_CLASSES} classes, "
          f"median of {args.steps} interleaved calls)")


if __name__ == "__main__":
    main()
