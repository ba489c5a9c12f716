"""SPSS training-step time at several U-Net widths (base filters), in one process.

Issue 7 asks whether a wider U-Net is affordable within an hour a seed. Steps
are interleaved so machine load affects every width alike. Prints each width's
median step time, its ratio to the first width, and what 100 epochs of training
steps alone (no validation) would take at the Aerial Dubai split's 75 steps an epoch:

    python benchmarks/width.py                         # 16, 24, 32 base filters, mixed_bfloat16
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from kerasweak import losses, models  # noqa: E402
from timing import interleaved_step_medians, random_proportion_batch  # noqa: E402  (benchmarks/timing.py)

NUM_CLASSES = 6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-filters", type=int, nargs="+", default=[16, 24, 32])
    parser.add_argument("--policy", default="mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps-per-epoch", type=int, default=75, help="Aerial Dubai: 1200 training patches / batch 16")
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    keras.mixed_precision.set_global_policy(args.policy)
    images, proportions = random_proportion_batch(args.batch, NUM_CLASSES)
    runs = {}
    for filters in args.base_filters:
        keras.utils.set_random_seed(0)
        model = models.build_spss(models.build_unet(NUM_CLASSES, base_filters=filters))
        model.compile(keras.optimizers.Adam(1e-3), losses.ProportionLoss())
        model.train_on_batch(images, proportions)  # trace and warm up
        runs[filters] = (model, proportions)
    medians = interleaved_step_medians(runs, images, args.steps)
    first = args.base_filters[0]
    for filters in args.base_filters:
        minutes = medians[filters] * args.steps_per_epoch * args.epochs / 60
        print(f"base filters {filters:3d}  {medians[filters]:.3f} s/step   /{first} = {medians[filters] / medians[first]:.2f}"
              f"   {args.epochs} epochs x {args.steps_per_epoch} steps = {minutes:.0f} min")
    print(f"({args.policy}, batch {args.batch}, 224², SPSS loss, median of {args.steps} interleaved steps)")


if __name__ == "__main__":
    main()
