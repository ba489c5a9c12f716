"""How much eq. 5's noise corrupts the Aerial Dubai labels, softmax renormalisation against clip-and-renormalise.

The noise sweep's "Label change (L1)" column barely moves with σ (0.993 at σ = 0,
1.045 at σ = 50), because the softmax's pull towards uniform dominates it. This
prints two scale-free measures of the same degraded training and validation
proportions that dubai-spss-noise trains on, for both renormalisations:
the Pearson correlation with the true proportions (all entries, each class
centred) and the share of patches whose largest class is unchanged, then the
ratio of the two modes' correlations:

    python benchmarks/label_noise.py --data ../shared/data
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from kerasweak.data import noisy_proportions, split_indices  # noqa: E402
from kerasweak.runner import load_patches, load_recipe  # noqa: E402

SIGMAS = (0, 5, 10, 15, 20, 30, 40, 50)


def correlation(degraded, true):
    """Pearson correlation over all entries, each class (column) centred on its mean."""
    a, b = degraded - degraded.mean(axis=0), true - true.mean(axis=0)
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("KERASWEAK_DATA"), help="folder holding aerial-dubai/")
    args = parser.parse_args()
    recipe = load_recipe("dubai-spss-noise")
    patches = load_patches(recipe, args.data)
    split = recipe["data"]
    train_idx, val_idx, _ = split_indices(len(patches), split["test_fraction"], split["val_fraction"], split["split_seed"])
    true = patches.proportions[np.concatenate([train_idx, val_idx])].astype(np.float64)
    seed = recipe["degrade"].get("seed", 0)
    print("| σ (%) | r softmax | r clip | r ratio softmax/clip | top class kept softmax | top class kept clip "
          "| L1 softmax | L1 clip |\n|---|---|---|---|---|---|---|---|")
    for sigma in SIGMAS:
        r, kept, l1 = {}, {}, {}
        for mode in ("softmax", "clip"):
            degraded = noisy_proportions(true, sigma / 100, seed, mode).astype(np.float64)
            r[mode] = correlation(degraded, true)
            kept[mode] = float((degraded.argmax(axis=1) == true.argmax(axis=1)).mean())
            l1[mode] = float(np.abs(degraded - true).sum(axis=1).mean())
        print(f"| {sigma} | {r['softmax']:.3f} | {r['clip']:.3f} | {r['softmax'] / r['clip']:.3f} "
              f"| {kept['softmax']:.3f} | {kept['clip']:.3f} | {l1['softmax']:.3f} | {l1['clip']:.3f} |")


if __name__ == "__main__":
    main()
