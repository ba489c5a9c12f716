"""Figures: the paper's Fig. 5/6 layout (input, ground truth, predicted class maps), and sweep plots."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import atomic_path  # noqa: E402


def colourise(labels, palette, ignore_colour=(0, 0, 0)):
    """An RGB image of a label mask; ignored labels are drawn black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:] = ignore_colour
    table[: len(palette)] = palette
    return table[labels]


def class_map_figure(path, images, masks, probabilities, class_names, palette, title=""):
    """One row per example: input, ground truth, prediction, then one map per class."""
    from .metrics import labels_from_probabilities

    n, num_maps = len(images), probabilities.shape[-1]
    cols = 3 + num_maps
    fig, axes = plt.subplots(n, cols, figsize=(1.8 * cols, 1.9 * n), squeeze=False)
    predicted = labels_from_probabilities(probabilities)
    for i in range(n):
        panels = [(images[i].squeeze(), "input", "gray"), (colourise(masks[i], palette), "ground truth", None),
                  (colourise(predicted[i], palette), "prediction", None)]
        panels += [(probabilities[i, ..., c], class_names[c] if num_maps > 1 else class_names[-1], "gray") for c in range(num_maps)]
        for ax, (img, label, cmap) in zip(axes[i], panels):
            ax.imshow(img, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap and img.dtype != np.uint8 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def sweep_figure(path, values, mious, xlabel, paper=None, title=""):
    """Test mIoU (mean ± std over seeds, percent) against a sweep parameter, with the paper's values if given."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.errorbar(values, [100 * m["mean"] for m in mious], yerr=[100 * m["std"] for m in mious], marker="o", capsize=3, label="kerasweak")
    quoted = [(v, float(paper[str(v)])) for v in values if str(v) in (paper or {})]
    if quoted:
        ax.plot(*zip(*quoted), "s--", color="grey", label="paper")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean IoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
