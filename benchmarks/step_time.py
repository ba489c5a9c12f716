"""Training-step time: SPSS (proportion loss) vs the benchmark (per-pixel CE).

Same U-Net, same batch (16 × 224² × 3), same process; steps are interleaved so
machine load affects both alike. Prints median step times and the ratio, in
float32 and in mixed_bfloat16.

    python benchmarks/step_time.py [--steps 10] [--base-filters 16]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasweak import losses, models  # noqa: E402


def build(policy, base_filters, method):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    unet = models.build_unet(6, base_filters=base_filters)
    model = models.build_spss(unet) if method == "spss" else unet
    loss = losses.ProportionLoss() if method == "spss" else losses.PixelCrossEntropy()
    model.compile(keras.optimizers.Adam(1e-3), loss)
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch, 224, 224, 3)).astype("float32")
    masks = rng.integers(0, 6, (args.batch, 224, 224)).astype("int32")
    proportions = np.stack([np.bincount(m.ravel(), minlength=6) / m.size for m in masks]).astype("float32")
    medians = {}
    for policy in ("float32", "mixed_bfloat16"):
        runs = {"spss": (build(policy, args.base_filters, "spss"), proportions),
                "benchmark": (build(policy, args.base_filters, "benchmark"), masks)}
        times = {name: [] for name in runs}
        for name, (model, target) in runs.items():
            model.train_on_batch(images, target)  # trace and warm up
        for _ in range(args.steps):
            for name, (model, target) in runs.items():
                start = time.perf_counter()
                model.train_on_batch(images, target)
                times[name].append(time.perf_counter() - start)
        for name in runs:
            medians[(policy, name)] = float(np.median(times[name]))
        ratio = medians[(policy, "spss")] / medians[(policy, "benchmark")]
        print(f"{policy:15s} SPSS {medians[(policy, 'spss')]:.3f} s/step   benchmark {medians[(policy, 'benchmark')]:.3f} s/step"
              f"   SPSS/benchmark = {ratio:.3f}")
    speedup = medians[("float32", "spss")] / medians[("mixed_bfloat16", "spss")]
    print(f"mixed_bfloat16 speed-up for SPSS: {speedup:.2f}x (batch {args.batch}, 224², base filters {args.base_filters}, {args.steps} steps)")


if __name__ == "__main__":
    main()
