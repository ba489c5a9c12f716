"""Training-step time of several losses on the same U-Net and batch, in one process.

Steps are interleaved so machine load affects every variant alike. Prints the
median step time of each variant and its ratio to per-pixel cross-entropy
("ce", the paper's benchmark method):

    python benchmarks/step_time.py                                  # SPSS vs CE (issue 2 goal <= 1.05)
    python benchmarks/step_time.py --variants semeda sobel --steps 5   # SEMEDA goal <= 1.15 in mixed_bfloat16, as the recipes train
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasweak import layers, losses, models  # noqa: E402
from timing import interleaved_step_medians  # noqa: E402  (benchmarks/timing.py)

NUM_CLASSES = 6


def _semeda_loss():
    edge_net = layers.SemedaNet(NUM_CLASSES)
    edge_net.build((None, None, None, NUM_CLASSES))
    edge_net.trainable = False  # timing only: an untrained edge net costs the same as a trained one
    return losses.SemedaLoss(edge_net)


VARIANTS = {
    "spss": lambda unet: (models.build_spss(unet), losses.ProportionLoss(), "proportions"),
    "ce": lambda unet: (unet, losses.PixelCrossEntropy(), "masks"),
    "semeda": lambda unet: (unet, _semeda_loss(), "masks"),
    "sobel": lambda unet: (unet, losses.SobelEdgeLoss(), "masks"),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", nargs="+", default=["spss", "ce"], choices=sorted(VARIANTS))
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    variants = list(dict.fromkeys(args.variants + ["ce"]))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch, 224, 224, 3)).astype("float32")
    masks = rng.integers(0, NUM_CLASSES, (args.batch, 224, 224)).astype("int32")
    targets = {"masks": masks,
               "proportions": np.stack([np.bincount(m.ravel(), minlength=NUM_CLASSES) / m.size for m in masks]).astype("float32")}
    for policy in args.policies:
        keras.mixed_precision.set_global_policy(policy)
        runs = {}
        for name in variants:
            keras.utils.set_random_seed(0)
            model, loss, target = VARIANTS[name](models.build_unet(NUM_CLASSES, base_filters=args.base_filters))
            model.compile(keras.optimizers.Adam(1e-3), loss)
            model.train_on_batch(images, targets[target])  # trace and warm up
            runs[name] = (model, targets[target])
        medians = interleaved_step_medians(runs, images, args.steps)
        for name in variants:
            print(f"{policy:15s} {name:7s} {medians[name]:.3f} s/step   {name}/ce = {medians[name] / medians['ce']:.3f}")
    print(f"(batch {args.batch}, 224², base filters {args.base_filters}, median of {args.steps} interleaved steps)")


if __name__ == "__main__":
    main()
