"""Evaluate a segmenter on labelled patches (or whole images at a working scale), draw its confusion matrix, and segment whole images by tiling."""

import numpy as np

from .constants import IGNORE_LABEL
from .data.pipeline import predict_batches
from .data.sizes import mask_sizes
from .io import atomic_path
from .scaling import scaled_strips
from .metrics import (class_e_measures, confusion_matrix, e_measure_scores, fit_class_bias, labels_from_probabilities,
                      present_class_miou, scores_from_confusion, trimap_confusions)

UNLABELED = "Unlabeled"
TRIMAP_REGIONS = ("boundary", "non_boundary")


def predict_probabilities(predict_fn, images, batch_size=16):
    """Class maps (N, H, W, C) for raw-pixel images, batch by batch."""
    return np.concatenate([np.asarray(predict_fn(batch), dtype=np.float32) for batch in predict_batches(images, batch_size)])


def dihedral_mean(predict_fn):
    """`predict_fn` averaged over the 8 flips and 90° rotations of each batch (the 4 flips if not square), each mapped back.

    Test-time augmentation ([evaluation] test_time_flips): a patch's class maps
    are the mean of its views' maps, each turned back to the patch's orientation.
    """
    def averaged(batch):
        batch = np.asarray(batch)
        turns = range(4) if batch.shape[1] == batch.shape[2] else (0, 2)
        total = 0.0
        for turn in turns:
            for flip in (False, True):
                view = np.rot90(batch, turn, axes=(1, 2))
                view = view[:, :, ::-1] if flip else view
                maps = np.asarray(predict_fn(np.ascontiguousarray(view)), dtype=np.float32)
                total = total + np.rot90(maps[:, :, ::-1] if flip else maps, -turn, axes=(1, 2))
        return total / (2 * len(turns))
    return averaged


def in_reflect_context(predict_fn, pad):
    """`predict_fn` on each batch reflect-padded by `pad` pixels at every edge, its maps cropped back to the batch's size.

    The network's zero padding then lies `pad` pixels outside the patch, so
    whatever it learnt to put at the input's border falls outside too
    (benchmarks/border_columns.py measures it). `pad` keeps sides a multiple
    of 16 when it is a multiple of 8.
    """
    def padded(batch):
        batch = np.pad(np.asarray(batch), ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        return np.asarray(predict_fn(batch), dtype=np.float32)[:, pad:-pad, pad:-pad]
    return padded if pad else predict_fn


def evaluate_patches(predict_fn, patches, batch_size=16, e_measure=False, trimap_widths=(), class_bias=None,
                     test_time_flips=False, reflect_context=0):
    """mIoU (all classes, and without Unlabeled), per-class IoU/F1/precision/recall, pixel accuracy; optionally E-measure and trimap mIoU.

    Labels are the argmax of the class maps. Patches with object sizes
    (PatchSet.sizes) also get `size_scores` from the same predictions.
    e_measure adds "e_measure" (mean over classes) and "e_measure_per_class"
    (kerasweak.metrics.class_e_measures, mean over images); trimap_widths adds
    "trimap_miou" = {"boundary" | "non_boundary": {"w": mIoU}} from confusion
    matrices pooled over all patches (widths as strings, as JSON keeps them).
    `class_bias` adds "calibrated": the same scores (without E-measure and trimaps)
    of the cut offset by it (kerasweak.metrics.labels_from_probabilities), from the
    same class maps, and the bias itself as "class_bias". `test_time_flips` adds
    "flipped": the plain scores of `dihedral_mean(predict_fn)` (8 predictions a patch);
    `reflect_context` adds "in_context": those of `in_reflect_context(predict_fn, reflect_context)`.
    """
    num_classes = patches.num_classes
    cuts = {"plain": None} if class_bias is None else {"plain": None, "calibrated": np.asarray(class_bias)}
    matrices = {cut: np.zeros((num_classes, num_classes), dtype=np.int64) for cut in cuts}
    size_rows = {cut: [] for cut in cuts}
    trimaps = {width: dict.fromkeys(TRIMAP_REGIONS, 0) for width in trimap_widths}
    e_rows = []
    for start in range(0, len(patches), batch_size):
        labels = patches.masks[start:start + batch_size]
        probabilities = np.asarray(predict_fn(patches.images[start:start + batch_size].astype(np.float32)))
        predicted_by_cut = {cut: labels_from_probabilities(probabilities, bias) for cut, bias in cuts.items()}
        for cut, predicted in predicted_by_cut.items():
            matrices[cut] += confusion_matrix(labels, predicted, num_classes)
            if patches.sizes is not None:
                size_rows[cut].append(image_size_rows(labels, predicted))
        predicted = predicted_by_cut["plain"]
        if e_measure:
            e_rows.append(class_e_measures(labels, predicted, num_classes))
        for width, regions in trimap_confusions(labels, predicted, num_classes, trimap_widths).items():
            for region, counts in regions.items():
                trimaps[width][region] = trimaps[width][region] + counts
    scores = {}
    for cut in cuts:
        scores[cut] = scores_from_confusion(matrices[cut], patches.class_names, exclude_from_mean=(UNLABELED,))
        scores[cut]["confusion_matrix"] = matrices[cut].tolist()
        if patches.sizes is not None:
            scores[cut].update(size_scores(*map(np.concatenate, zip(*size_rows[cut])), patches.sizes))
    plain = scores["plain"]
    if e_measure:
        plain.update(e_measure_scores(np.concatenate(e_rows), patches.class_names))
    if trimap_widths:
        plain["trimap_miou"] = {region: {str(width): present_class_miou(trimaps[width][region]) for width in trimap_widths}
                                for region in TRIMAP_REGIONS}
    if class_bias is not None:
        plain["calibrated"] = {**scores["calibrated"], "class_bias": cuts["calibrated"].tolist()}
    if test_time_flips:
        plain["flipped"] = evaluate_patches(dihedral_mean(predict_fn), patches, batch_size)
    if reflect_context:
        plain["in_context"] = evaluate_patches(in_reflect_context(predict_fn, reflect_context), patches, batch_size)
    return plain


def most_frequent_class_scores(train_masks, test_masks, class_names, chunk=256):
    """The scores of a map of the training masks' most frequent class everywhere: the floor a weak label must beat.

    {"class": its name, and scores_from_confusion's figures on `test_masks`}.
    Masks are read `chunk` patches at a time, so lazily read folders stay lazy.
    """
    num_classes = len(class_names)
    counts = np.zeros(num_classes, dtype=np.int64)
    for start in range(0, len(train_masks), chunk):
        masks = np.asarray(train_masks[start:start + chunk]).ravel()
        counts += np.bincount(masks[masks != IGNORE_LABEL], minlength=num_classes)[:num_classes]
    most = int(np.argmax(counts))
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for start in range(0, len(test_masks), chunk):
        masks = np.asarray(test_masks[start:start + chunk])
        matrix += confusion_matrix(masks, np.full_like(masks, most), num_classes)
    return {"class": class_names[most], **scores_from_confusion(matrix, class_names, exclude_from_mean=(UNLABELED,))}


def image_size_rows(masks, predicted):
    """(each image's foreground IoU, each prediction's object size) of a batch, for `size_scores`."""
    predicted, truth = predicted > 0, masks > 0
    intersection = (predicted & truth).sum(axis=(1, 2))
    union = (predicted | truth).sum(axis=(1, 2))
    return np.where(union > 0, intersection / np.maximum(union, 1), 1.0), mask_sizes(predicted)


def size_scores(iou, predicted_sizes, sizes):
    """Object-size figures of binary predictions ("Learning to segment from object sizes", eq. 22-23), from image_size_rows.

    image_iou: the mean over images of each image's IoU of foreground (an image
    where both are empty counts 1); size_error: the mean squared error E between
    the given object sizes and the predictions' sizes. Computed batch by batch,
    so no whole set of masks or predictions is held.
    """
    return {"image_iou": float(iou.mean()), "size_error": float(np.mean((sizes - predicted_sizes) ** 2))}


def evaluate_whole_images(predict_fn, pairs, class_names, working_scale, class_bias=None):
    """mIoU, per-class IoU/F1/precision/recall, accuracy and confusion counts of whole (image, mask) pairs at a working scale.

    Each image is predicted as `kerasweak predict` does for an export with a
    working scale (kerasweak.scaling.scaled_strips) and every native pixel is
    scored; `class_bias` adds "calibrated" as in evaluate_patches.
    """
    num_classes = len(class_names)
    cuts = {"plain": None} if class_bias is None else {"plain": None, "calibrated": np.asarray(class_bias)}
    matrices = {cut: np.zeros((num_classes, num_classes), dtype=np.int64) for cut in cuts}
    for image, mask in pairs:
        for start, maps in scaled_strips(predict_fn, image, working_scale):
            for cut, bias in cuts.items():
                matrices[cut] += confusion_matrix(mask[start:start + len(maps)], labels_from_probabilities(maps, bias), num_classes)
    scores = {cut: {**scores_from_confusion(matrix, class_names, exclude_from_mean=(UNLABELED,)),
                    "confusion_matrix": matrix.tolist()} for cut, matrix in matrices.items()}
    plain = scores["plain"]
    if class_bias is not None:
        plain["calibrated"] = {**scores["calibrated"], "class_bias": cuts["calibrated"].tolist()}
    return plain


def row_normalised(matrix):
    """Confusion counts (rows true, columns predicted) as fractions of each true class's pixels; a class with none stays 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def confusion_figure(path, matrix, class_names, title="confusion matrix"):
    """Write a PNG of the row-normalised confusion matrix: true classes down, predicted across, each cell its fraction and count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    fractions = row_normalised(matrix)
    side = 1.2 + 0.9 * len(class_names)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    shown = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, label="fraction of the true class's pixels")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for (row, col), fraction in np.ndenumerate(fractions):
        ax.text(col, row, f"{fraction:.2f}\n{matrix[row, col]}", ha="center", va="center", fontsize=8,
                color="white" if fraction > 0.5 else "black")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def fit_calibration(predict_fn, val, batch_size=16):
    """The class bias (kerasweak.metrics.fit_class_bias) that makes the predicted class areas on `val` match its mean given proportions (no masks)."""
    return fit_class_bias(predict_probabilities(predict_fn, val.images, batch_size), val.proportions.mean(axis=0))


def _blend_window(size):
    """Separable weights that fall towards the tile border, so overlaps blend without seams."""
    ramp = np.minimum(np.arange(size) + 1, np.arange(size)[::-1] + 1).astype(np.float32)
    ramp = np.minimum(ramp / (size / 4), 1.0)
    return np.outer(ramp, ramp)[..., None]


def predict_tiled(predict_fn, image, num_outputs, tile=448, overlap=64):
    """Class maps for a whole (H, W, channels) image of any size.

    The image is reflect-padded, cut into tile×tile windows overlapping by
    `overlap`, and the window predictions are blended with a border-tapering
    weight. Memory is bounded by one tile plus the (H, W, C) result.
    """
    if tile % 16:
        raise ValueError(f"tile must be a multiple of 16, got {tile}")
    height, width = image.shape[:2]
    stride = tile - overlap
    rows = max(1, int(np.ceil((height - overlap) / stride)))
    cols = max(1, int(np.ceil((width - overlap) / stride)))
    pad_h, pad_w = (rows - 1) * stride + tile - height, (cols - 1) * stride + tile - width
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect" if min(height, width) > max(pad_h, pad_w) else "edge")
    total = np.zeros(padded.shape[:2] + (num_outputs,), dtype=np.float32)
    weight = np.zeros(padded.shape[:2] + (1,), dtype=np.float32)
    window = _blend_window(tile)
    for r in range(rows):
        for c in range(cols):
            y, x = r * stride, c * stride
            crop = padded[None, y:y + tile, x:x + tile].astype(np.float32)
            total[y:y + tile, x:x + tile] += np.asarray(predict_fn(crop))[0] * window
            weight[y:y + tile, x:x + tile] += window
    return (total / np.maximum(weight, 1e-6))[:height, :width]
