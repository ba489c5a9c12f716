"""Size-supervised vs pixel-supervised training step, and flipped sizes vs brute force, in one process.

Issue 4's goal: a `SizeSupervisedSegmenter` step on size-annotated images at n = 1
costs at most 1.5× a pixel-supervised (BCE) step of the same U-Net and batch
(48×32, batch 32). Steps are interleaved so machine load hits both alike.

    python benchmarks/size_step.py                 # step ratio at n = 1
    python benchmarks/size_step.py --samples 1 2 4 8

It also times `flipped_object_sizes` on the batch against brute force (one
`object_size` per flipped pixel, V = 1536 masks per image).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweak import models, ops  # noqa: E402
from timing import interleaved_step_medians  # noqa: E402  (benchmarks/timing.py)

HEIGHT, WIDTH = 48, 32


def _targets(masks, size_weight):
    """The SizeSupervisedSegmenter target dict: all images size-annotated, or all mask-annotated."""
    batch = len(masks)
    return {"mask": masks, "size": ops.object_size(masks).numpy().astype("float32"),
            "mask_weight": np.full(batch, 1.0 - size_weight, "float32"), "size_weight": np.full(batch, size_weight, "float32")}


def _brute_force_flips(masks):
    """g(y↓i) for every pixel by flipping it and recomputing the size: V object_size calls' worth of work."""
    flat = masks.reshape(len(masks), -1)
    flips = np.repeat(flat[:, None, :], flat.shape[1], axis=1)
    index = np.arange(flat.shape[1])
    flips[:, index, index] = 1 - flips[:, index, index]
    return ops.object_size(tf.constant(flips.reshape(-1, HEIGHT, WIDTH))).numpy()


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, nargs="+", default=[1], help="n, sampled gradients per step")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--base-filters", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch, HEIGHT, WIDTH, 1)).astype("float32")
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    centres = rng.integers([12, 8], [36, 24], (args.batch, 2))
    masks = np.stack([((np.abs(yy - r) < 9) & (np.abs(xx - c) < 5)).astype("float32") for r, c in centres])

    runs = {}
    for name, n, size_weight in [("pixel (BCE)", 1, 0.0)] + [(f"size, n={n}", n, 1.0) for n in args.samples]:
        keras.utils.set_random_seed(0)
        unet = models.build_unet(1, base_filters=args.base_filters, channels=1)
        if size_weight == 0.0:  # the pixel-supervised reference: the plain U-Net with BCE, as pre-training uses it
            model, target = unet, masks[..., None]
            model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy())
        else:
            model, target = models.SizeSupervisedSegmenter(unet, num_samples=n, seed=0), _targets(masks, size_weight)
            model.compile(keras.optimizers.Adam(1e-3))
        model.train_on_batch(images, target)  # trace and warm up
        runs[name] = (model, target)
    medians = interleaved_step_medians(runs, images, args.steps)
    for name, median in medians.items():
        print(f"{name:12s} {median * 1000:7.1f} ms/step   ratio to pixel step = {median / medians['pixel (BCE)']:.2f}")

    flipped = tf.function(ops.flipped_object_sizes)
    binary = tf.constant(masks > 0)
    flipped(binary)
    fast = _median_seconds(lambda: flipped(binary).numpy(), 10)
    slow = _median_seconds(lambda: _brute_force_flips(masks[:4].astype("uint8")), 3) * (args.batch / 4)
    print(f"flipped_object_sizes: {fast * 1000:.1f} ms per batch; brute force: {slow * 1000:.0f} ms "
          f"(timed on 4 masks, scaled to {args.batch}); speed-up {slow / fast:.0f}×")
    print(f"(batch {args.batch}, {HEIGHT}×{WIDTH}, base filters {args.base_filters}, float32, median of {args.steps} interleaved steps)")


if __name__ == "__main__":
    main()
