"""How close a training step comes to this machine's arithmetic peak: achieved FLOP/s against a large matmul's, in one process.

The peak is what TensorFlow's own large square matmul reaches here, in float32
and in bfloat16 (the recipes train in mixed_bfloat16). A step's FLOPs are its
convolutions' multiply-accumulates × 2, counted as benchmarks/step_macs.py
counts them (forward, input gradient except the first layer, kernel gradient:
about 3 forward passes; the frozen SEMEDA edge net: forward on prediction and
target and back to the prediction). Pooling, activations, the losses'
element-wise work, the optimiser and the size estimator's sampling are not
counted, so the ratios are a lower bound of the share of the peak used.

    python benchmarks/roofline.py                    # SPSS and SEMEDA steps (224², batch 16), size step (48×32, batch 32)
    python benchmarks/roofline.py --steps 5 --matmul 2048
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweak import layers, losses, models  # noqa: E402
from size_step import HEIGHT, WIDTH, _targets  # noqa: E402  (benchmarks/size_step.py)
from step_macs import edge_net_forward_macs, unet_forward_macs  # noqa: E402  (benchmarks/step_macs.py)
from timing import interleaved_step_medians  # noqa: E402  (benchmarks/timing.py)

NUM_CLASSES = 6


def matmul_flops_per_second(n, dtype, repeats=5):
    """FLOP/s of an n×n by n×n matmul (2n³ FLOPs), median of `repeats` after a warm-up."""
    a = tf.random.uniform((n, n), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    product = tf.function(lambda: tf.matmul(a, b))
    product().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / float(np.median(times))


def unet_step_flops(unet, size, batch):
    """Convolution FLOPs of one training step of `unet` on a batch of size×size images."""
    forward = unet_forward_macs(unet, size)
    return 2 * batch * (3 * sum(forward) - forward[0])


def segmentation_steps(batch, base_filters):
    """{name: (model, target, FLOPs)} of the SPSS and SEMEDA (λ = 4, 2, 0) steps on 224² Dubai-like batches."""
    rng = np.random.default_rng(0)
    masks = rng.integers(0, NUM_CLASSES, (batch, 224, 224)).astype("int32")
    proportions = np.stack([np.bincount(m.ravel(), minlength=NUM_CLASSES) / m.size for m in masks]).astype("float32")
    edge_net = layers.SemedaNet(NUM_CLASSES)
    edge_net.build((None, None, None, NUM_CLASSES))
    edge_net.trainable = False
    edge_flops = 2 * batch * 3 * sum(edge_net_forward_macs(edge_net, 224)[:2])  # λ3 = 0: two layers run
    steps = {}
    for name, wrap, loss, target, extra in (("spss", models.build_spss, losses.ProportionLoss(), proportions, 0),
                                            ("semeda", lambda u: u, losses.SemedaLoss(edge_net), masks, edge_flops)):
        keras.utils.set_random_seed(0)
        unet = models.build_unet(NUM_CLASSES, base_filters=base_filters)
        model = wrap(unet)
        model.compile(keras.optimizers.Adam(1e-3), loss)
        steps[name] = (model, target, unet_step_flops(unet, 224, batch) + extra)
    return steps, rng.integers(0, 256, (batch, 224, 224, 3)).astype("float32")


def size_step(batch, base_filters):
    """(model, target, FLOPs) of a size fine-tuning step at n = 1 on 48×32 slices, and its images."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    centres = rng.integers([12, 8], [36, 24], (batch, 2))
    masks = np.stack([((np.abs(yy - r) < 9) & (np.abs(xx - c) < 5)).astype("float32") for r, c in centres])
    keras.utils.set_random_seed(0)
    unet = models.build_unet(1, base_filters=base_filters, channels=1)
    model = models.SizeSupervisedSegmenter(unet, num_samples=1, seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    forward = [macs * WIDTH / HEIGHT for macs in unet_forward_macs(unet, HEIGHT)]  # a 48² count scaled to 48×32
    flops = 2 * batch * (3 * sum(forward) - forward[0])
    return (model, _targets(masks, 1.0), flops), rng.integers(0, 256, (batch, HEIGHT, WIDTH, 1)).astype("float32")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--matmul", type=int, default=2048, help="side of the square matmuls that measure the peak")
    parser.add_argument("--base-filters", type=int, default=16)
    args = parser.parse_args()
    peaks = {dtype: matmul_flops_per_second(args.matmul, dtype) for dtype in (tf.float32, tf.bfloat16)}
    print(f"matmul {args.matmul}²: float32 {peaks[tf.float32] / 1e9:.1f} GFLOP/s, bfloat16 {peaks[tf.bfloat16] / 1e9:.1f} GFLOP/s")
    for policy, peak in (("float32", peaks[tf.float32]), ("mixed_bfloat16", peaks[tf.bfloat16])):
        keras.mixed_precision.set_global_policy(policy)
        steps, images = segmentation_steps(16, args.base_filters)
        size, size_images = size_step(32, args.base_filters)
        for model, target, _ in [*steps.values(), size]:
            model.train_on_batch(images if model is not size[0] else size_images, target)  # trace and warm up
        medians = interleaved_step_medians({n: (m, t) for n, (m, t, _) in steps.items()}, images, args.steps)
        medians["size"] = interleaved_step_medians({"size": size[:2]}, size_images, args.steps)["size"]
        for name, (_, _, flops) in [*steps.items(), ("size", size)]:
            achieved = flops / medians[name]
            print(f"{policy:15s} {name:7s} {medians[name]:.3f} s/step  {flops / 1e9:7.1f} GFLOP  "
                  f"{achieved / 1e9:6.1f} GFLOP/s  achieved/matmul peak = {achieved / peak:.3f}")
    print(f"(SPSS, SEMEDA: batch 16, 224², 6 classes; size: batch 32, 48×32, n = 1; base filters {args.base_filters}; "
          f"median of {args.steps} steps)")


if __name__ == "__main__":
    main()
