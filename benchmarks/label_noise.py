"""How much eq. 5's noise corrupts the Aerial Dubai labels, softmax renormalisation against clip-and-renormalise.

The noise sweep's "Label change (L1)" column barely moves with σ (0.993 at σ = 0,
1.045 at σ = 50), because the softmax's pull towards uniform dominates it. This
prints two scale-free measures of the same degraded training and validation
proportions that dubai-spss-noise trains on, for both renormalisations:
the Pearson correlation with the true proportions (all entries, each class
centred) and the share of patches whose largest class is unchanged, then the
ratio of the two modes' correlations; and, for the softmax, how far the noise
moves each class's proportion from σ = 0's labels (mean and 90th percentile of
|ρ̃_c(σ) − ρ̃_c(0)|), the scale an interval loss's tolerance has to cover
(dubai-spss-noise-signals):

    python benchmarks/label_noise.py --data ../shared/data
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from kerasweak.data import noisy_proportions, read_patches, recipe_split  # noqa: E402
from kerasweak.recipe import load_recipe  # noqa: E402

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
    patches = read_patches(recipe, args.data)
    train_idx, val_idx, _ = recipe_split(recipe, patches)
    true = patches.proportions[np.concatenate([train_idx, val_idx])].astype(np.float64)
    seed = recipe["degrade"].get("seed", 0)
    print("| σ (%) | r softmax | r clip | r ratio softmax/clip | top class kept softmax | top class kept clip "
          "| L1 softmax | L1 clip | mean shift from σ = 0 | 90th pct. shift |\n|---|---|---|---|---|---|---|---|---|---|")
    noiseless = noisy_proportions(true, 0.0, seed, "softmax").astype(np.float64)
    for sigma in SIGMAS:
        r, kept, l1 = {}, {}, {}
        for mode in ("softmax", "clip"):
            degraded = noisy_proportions(true, sigma / 100, seed, mode).astype(np.float64)
            r[mode] = correlation(degraded, true)
            kept[mode] = float((degraded.argmax(axis=1) == true.argmax(axis=1)).mean())
            l1[mode] = float(np.abs(degraded - true).sum(axis=1).mean())
            if mode == "softmax":
                shift = np.abs(degraded - noiseless)
        print(f"| {sigma} | {r['softmax']:.3f} | {r['clip']:.3f} | {r['softmax'] / r['clip']:.3f} "
              f"| {kept['softmax']:.3f} | {kept['clip']:.3f} | {l1['softmax']:.3f} | {l1['clip']:.3f} "
              f"| {shift.mean():.3f} | {np.quantile(shift, 0.9):.3f} |")


if __name__ == "__main__":
    main()
