"""Does a model put class mass at fixed places of the patch? The per-column and per-row mean class maps over test patches.

Issue 33, "no border shortcut": an SPSS model trained from proportions only can
match them by painting a class at a fixed place (a stripe near an edge) instead of
where the image shows it. Over many test patches the masks' per-column class
shares are nearly flat, so a model's should be too. For each class this prints
the interior mean share (columns and rows 16 px from the edges), the largest
deviation of a border column / row (the 16 px at each edge) from it, where it is,
and the same figure for the masks, in percentage points, then the test mIoU.

--context N predicts each patch reflect-padded by N pixels at every edge and
crops the maps back (kerasweak.evaluation.in_reflect_context): if the deviations
vanish, the model reads the border from its input's edge (its zero padding),
not from what the patch shows, and the mIoU line says what that costs.

    python benchmarks/border_columns.py results/dubai-spss/model --data ../shared/data
    python benchmarks/border_columns.py OUT/model --data MY_FOLDER --figure profile.png --context 32
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from kerasweak.evaluation import evaluate_patches, in_reflect_context, predict_probabilities  # noqa: E402
from kerasweak.inference import export_patches, load_export  # noqa: E402
from kerasweak.recipe import normalise_recipe  # noqa: E402

BAND = 16  # pixels at each edge counted as border


def edge_deviation(profile):
    """(largest |border − interior mean| of a (L, C) profile per class, its index) ; border = BAND at each end."""
    interior = profile[BAND:-BAND].mean(axis=0)
    border = np.r_[0:BAND, len(profile) - BAND:len(profile)]
    deviation = np.abs(profile[border] - interior)
    return interior, deviation.max(axis=0), border[deviation.argmax(axis=0)]


def profiles(maps):
    """(per-column, per-row) mean of (N, H, W, C) class maps: (W, C), (H, C)."""
    return maps.mean(axis=(0, 1)), maps.mean(axis=(0, 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="an exported model folder (OUT/model)")
    parser.add_argument("--data", help="the data folder the run used")
    parser.add_argument("--figure", help="also write the per-column profiles as a PNG here")
    parser.add_argument("--context", type=int, default=0, help="reflect-pad each patch by this many pixels (a multiple of 8)")
    args = parser.parse_args()
    predict_fn, metadata = load_export(args.model)
    recipe = normalise_recipe(metadata["recipe"], args.model, stored=True)
    test = export_patches(metadata, recipe, args.model, args.data)
    predict_fn = in_reflect_context(predict_fn, args.context)
    maps = predict_probabilities(predict_fn, test.images)
    if maps.shape[-1] == 1:
        maps = np.concatenate([1 - maps, maps], axis=-1)
    scored = test.masks < maps.shape[-1]  # the ignore label counts for no class
    truth = np.eye(maps.shape[-1], dtype=np.float32)[np.where(scored, test.masks, 0)] * scored[..., None]
    print(f"{args.model}: {len(test)} test patches of {maps.shape[1]}x{maps.shape[2]}, reflect context {args.context} px; "
          "shares in %, deviations in points")
    print(f"{'class':12s} {'share':>6s} {'column dev (at)':>16s} {'masks':>6s} {'row dev (at)':>14s} {'masks':>6s}")
    model_columns, model_rows = profiles(maps)
    mask_columns, mask_rows = profiles(truth)
    for c, name in enumerate(test.class_names):
        share, col_dev, col_at = (x[c] for x in edge_deviation(model_columns))
        row_dev, row_at = (x[c] for x in edge_deviation(model_rows)[1:])
        mask_col, mask_row = edge_deviation(mask_columns)[1][c], edge_deviation(mask_rows)[1][c]
        print(f"{name:12s} {100 * share:6.1f} {100 * col_dev:9.1f} ({col_at:3d}) {100 * mask_col:6.1f} "
              f"{100 * row_dev:7.1f} ({row_at:3d}) {100 * mask_row:6.1f}")
    print(f"test mIoU {100 * evaluate_patches(predict_fn, test)['miou']:.1f}")
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4))
        for c, name in enumerate(test.class_names):
            line, = ax.plot(100 * model_columns[:, c], label=f"{name} (model)")
            ax.plot(100 * mask_columns[:, c], ls=":", color=line.get_color())
        ax.set_xlabel("column (px)")
        ax.set_ylabel("mean share of the class (%)")
        ax.set_title("per-column class shares over the test patches: model (solid), masks (dotted)")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=100)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
