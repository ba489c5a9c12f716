"""What the U-Net's reflect padding costs: an SPSS training step with padding = "reflect" against "zeros".

Reflect padding copies each 3×3 convolution's input into a mirrored border and
then convolves "valid"; zero "same" padding needs no copy. Steps are
interleaved in one process so machine load affects both alike; prints each
median and the ratio reflect/zeros:

    python benchmarks/unet_padding.py --steps 10
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
    parser.add_argument("--policy", default="mixed_bfloat16", help="Keras dtype policy, as the recipes train")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    keras.mixed_precision.set_global_policy(args.policy)
    images, proportions = random_proportion_batch(args.batch, NUM_CLASSES)
    runs = {}
    for padding in ("zeros", "reflect"):
        keras.utils.set_random_seed(0)
        model = models.build_spss(models.build_unet(NUM_CLASSES, base_filters=args.base_filters, padding=padding))
        model.compile(keras.optimizers.Adam(1e-3), losses.ProportionLoss())
        model.train_on_batch(images, proportions)  # trace and warm up
        runs[padding] = (model, proportions)
    medians = interleaved_step_medians(runs, images, args.steps)
    for padding, seconds in medians.items():
        print(f"{padding:8s} {seconds:.3f} s/step")
    print(f"reflect/zeros = {medians['reflect'] / medians['zeros']:.3f}   ({args.policy}, batch {args.batch}, 224², "
          f"base filters {args.base_filters}, median of {args.steps} interleaved steps)")


if __name__ == "__main__":
    main()
