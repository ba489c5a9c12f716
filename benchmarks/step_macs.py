"""Convolution multiply-accumulates of a training step: the U-Net with per-pixel CE, and what SEMEDA's edge term adds.

A count, not a timing: it says how far below 1 + (edge MACs / U-Net MACs) no
implementation of SemedaLoss can bring the step-time ratio that
benchmarks/step_time.py measures (issue 5's goal is <= 1.15). Only convolutions
are counted (they are nearly all the arithmetic; pooling, activations, the
losses' element-wise work and the optimizer are left out), so the real ratio
floor is a little higher still.

A trainable convolution costs its forward pass, the gradient to its input (not
for the U-Net's first layer) and the gradient to its kernel: about 3 forward
passes. The frozen edge net g_phi runs forward on the prediction and on the
target, and back to the prediction (no kernel gradients): 3 forward passes of
the layers it runs (up to the last layer with lambda != 0).

    python benchmarks/step_macs.py                 # 6 classes, 224², batch 16, 16 base filters

The U-Net's forward count is checked against TensorFlow's own graph profiler
(which also counts bias adds and activations, so it is a little higher).
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # noqa: E402

from kerasweak import layers, models  # noqa: E402


def unet_forward_macs(unet, size):
    """Forward MACs per image of every convolution of `unet` on a size×size input, in layer order."""
    convs = [layer for layer in unet.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    probe = keras.Model(unet.inputs, [tensor for layer in convs for tensor in (layer.input, layer.output)])
    shapes = [tensor.shape for tensor in probe([np.zeros((1, size, size, unet.input_shape[-1]), "float32")])]
    counted = []
    for layer, in_shape, out_shape in zip(convs, shapes[0::2], shapes[1::2]):
        # A transposed conv scatters each input pixel over its kernel; a conv gathers one per output pixel.
        spatial = in_shape[1:3] if isinstance(layer, keras.layers.Conv2DTranspose) else out_shape[1:3]
        counted.append(int(np.prod(spatial)) * int(np.prod(layer.kernel.shape)))
    return counted


def profiler_forward_flops(unet, size):
    """Floating-point operations of one image's forward pass, as tf.compat.v1.profiler counts them."""
    forward = tf.function(lambda x: unet(x)).get_concrete_function(tf.TensorSpec((1, size, size, unet.input_shape[-1])))
    options = tf.compat.v1.profiler.ProfileOptionBuilder(tf.compat.v1.profiler.ProfileOptionBuilder.float_operation())
    options = options.with_empty_output().build()
    graph = convert_variables_to_constants_v2(forward).graph
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


def edge_net_forward_macs(edge_net, size):
    """Forward MACs per image of each SemedaNet layer on a size×size map (its convs keep the size)."""
    return [size * size * int(np.prod(conv.kernel.shape)) for conv in edge_net.convs]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--base-filters", type=int, default=16)
    args = parser.parse_args()
    unet = models.build_unet(args.classes, base_filters=args.base_filters)
    forward = unet_forward_macs(unet, args.size)
    unet_step = args.batch * (3 * sum(forward) - forward[0])  # the first layer needs no gradient to its input
    edge_net = layers.SemedaNet(args.classes)
    edge_net.build((None, None, None, args.classes))
    edge_layers = edge_net_forward_macs(edge_net, args.size)
    ours, profiler = 2 * sum(forward), profiler_forward_flops(unet, args.size)
    print(f"U-Net forward pass, one image: {ours / 1e9:.3f} GFLOP counted here, {profiler / 1e9:.3f} by tf.profiler")
    print(f"U-Net training step (CE): {unet_step / 1e9:.1f} GMAC "
          f"(batch {args.batch}, {args.size}², {args.base_filters} base filters, {args.classes} classes)")
    for depth, settings in ((1, "λ = (λ1, 0, 0)"), (2, "λ2 != 0, λ3 = 0 (the default (4, 2, 0))"), (3, "λ3 != 0")):
        edge_step = args.batch * 3 * sum(edge_layers[:depth])
        print(f"edge term up to layer {depth}, {settings}: +{edge_step / 1e9:.1f} GMAC, "
              f"semeda/ce >= {(unet_step + edge_step) / unet_step:.3f}")


if __name__ == "__main__":
    main()
