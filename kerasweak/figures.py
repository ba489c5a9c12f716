"""Figures: the paper's Fig. 5/6 layout (input, ground truth, predicted class maps) with a class legend, methods side
by side, the class legend alone, loss curves, sweep and trimap plots."""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .io import atomic_path  # noqa: E402


def colourise(labels, palette, ignore_colour=(0, 0, 0)):
    """An RGB image of a label mask; ignored labels are drawn black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:] = ignore_colour
    table[: len(palette)] = palette
    return table[labels]


def legend_handles(class_names, palette):
    """One colour patch per class, labelled with its name: the legend of every coloured mask kerasweak draws."""
    return [Patch(facecolor=np.asarray(colour, np.float64) / 255, edgecolor="black", linewidth=0.5, label=name)
            for name, colour in zip(class_names, palette)]


def legend(class_names, palette):
    """An RGB image (uint8) of the class legend alone, e.g. `kerasweak predict`'s *_legend.png."""
    from io import BytesIO

    from PIL import Image

    fig = plt.figure(figsize=(0.5, 0.5))  # bbox_inches="tight" grows the picture to the legend
    fig.legend(handles=legend_handles(class_names, palette), loc="center", frameon=False, fontsize=8)
    buffer = BytesIO()
    fig.savefig(buffer, dpi=110, format="png", bbox_inches="tight", pad_inches=0.05, facecolor="white")
    plt.close(fig)
    return np.asarray(Image.open(buffer).convert("RGB"))


def class_map_figure(path, images, masks, probabilities, class_names, palette, title=""):
    """One row per example: input, ground truth, prediction, then one map per class; the class legend below."""
    from .metrics import labels_from_probabilities

    num_maps = probabilities.shape[-1]
    predicted = labels_from_probabilities(probabilities)
    rows = [[(images[i].squeeze(), "input", "gray"), (colourise(masks[i], palette), "ground truth", None),
             (colourise(predicted[i], palette), "prediction", None)]
            + [(probabilities[i, ..., c], class_names[c] if num_maps > 1 else class_names[-1], "gray") for c in range(num_maps)]
            for i in range(len(images))]
    _panel_grid(path, rows, title, legend_handles(class_names, palette))


def methods_figure(path, images, masks, predictions, palette, title=""):
    """One row per example: input, ground truth, then each method's predicted labels (`predictions`: {name: (N, H, W)})."""
    rows = [[(images[i].squeeze(), "input", "gray"), (colourise(masks[i], palette), "ground truth", None)]
            + [(colourise(labels[i], palette), name, None) for name, labels in predictions.items()]
            for i in range(len(images))]
    _panel_grid(path, rows, title)


def _panel_grid(path, rows, title, handles=()):
    """Rows of (image, column title, colour map) panels, a legend of `handles` below; a colour map's float maps span 0-1."""
    n, cols = len(rows), len(rows[0])
    fig, axes = plt.subplots(n, cols, figsize=(1.8 * cols, 1.9 * n + 0.3 * bool(handles)), squeeze=False,
                             layout="constrained")
    for i, panels in enumerate(rows):
        for ax, (img, label, cmap) in zip(axes[i], panels):
            ax.imshow(img, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap and img.dtype != np.uint8 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=8)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def loss_curves(out):
    """{"STAGE COLUMN": [(epoch, value)]}: loss and val_loss of every stage of every seed (OUT/seed_*/**/log.csv).

    Epochs count from 1; an epoch without validation ([train] validation_every) has no val_loss point.
    """
    out, curves = Path(out), {}
    for log in sorted(out.glob("seed_*/**/log.csv")):
        stage = log.parent.relative_to(out).as_posix()
        with open(log, newline="") as handle:
            rows = list(csv.DictReader(handle))
        for column in ("loss", "val_loss"):
            points = [(int(row["epoch"]) + 1, float(row[column])) for row in rows if row.get(column)]
            if points:
                curves[f"{stage} {column}"] = points
    return curves


def loss_figure(out):
    """OUT/loss.png, the loss_curves of a run folder (validation dashed); returns its path, None without any log."""
    curves = loss_curves(out)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for label, points in curves.items():
        epochs, values = zip(*points)
        ax.plot(epochs, values, "--" if label.endswith("val_loss") else "-", marker="o", markersize=3, label=label)
    _finish_axes(ax, "epoch", "loss", f"{Path(out).name}: loss per epoch")
    fig.tight_layout()
    _save(fig, Path(out) / "loss.png")
    return Path(out) / "loss.png"


def sweep_figure(path, values, series, xlabel, ylabel, paper=None, title="", log_x=False, percent=True):
    """Mean ± std over seeds of each named series against a sweep parameter, with the paper's values if given."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    _plot_series(ax, values, series, 100 if percent else 1)
    quoted = [(v, float(paper[str(v)])) for v in values if str(v) in (paper or {})]
    if quoted:
        ax.plot(*zip(*quoted), "s--", color="grey", label="paper")
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
    _finish_axes(ax, xlabel, ylabel, title)
    fig.tight_layout()
    _save(fig, path)


def _plot_series(ax, values, series, scale):
    """One error-bar line (mean ± std over seeds) per named list of summaries."""
    for label, stats in series.items():
        ax.errorbar(values, [scale * m["mean"] for m in stats], yerr=[scale * m["std"] for m in stats], marker="o",
                    capsize=3, label=label)


def trimap_figure(path, trimaps, title=""):
    """Trimap mIoU against band width, boundary and non-boundary side by side, one line per run (SEMEDA Fig. 5).

    trimaps: {label: summary["trimap_miou"]}, i.e. {region: {"w": mean ± std}}.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, region in zip(axes, ("boundary", "non_boundary")):
        for label, trimap in trimaps.items():
            widths = sorted(trimap[region], key=int)
            _plot_series(ax, [int(w) for w in widths], {label: [trimap[region][w] for w in widths]}, 100)
        _finish_axes(ax, "trimap width (pixels)", "mIoU (%)", region.replace("_", "-"))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def curves_figure(path, logs, heading, title=""):
    """Validation E and IoU per fine-tuning epoch, one line per setting (the object-size paper's Fig. 6)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for value, log in logs.items():
        epochs = np.arange(1, len(log["val_size_error"]) + 1)
        axes[0].plot(epochs, log["val_size_error"], label=f"{heading} = {value}")
        axes[1].plot(epochs, 100 * np.asarray(log["val_iou"]), label=f"{heading} = {value}")
    _finish_axes(axes[0], "epoch", "E (pixels²)", "")
    _finish_axes(axes[1], "epoch", "IoU (%)", "")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _finish_axes(ax, xlabel, ylabel, title):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
