"""Segmentation metrics from a confusion matrix (the paper's Table 1 figures).

mIoU averages per-class IoU over the classes (the dataset-level confusion matrix,
all test pixels pooled); "mean accuracy" is overall pixel accuracy, as the paper
reports it (see ../shared/papers/NOTES.md). Pixels labelled IGNORE_LABEL are left out.
"""

import keras
import numpy as np
from keras import ops

from .constants import IGNORE_LABEL
from .ops.edges import boundary_band


def confusion_matrix(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """(C, C) counts; rows are true classes, columns predicted classes."""
    labels = np.asarray(labels).ravel().astype(np.int64)
    predictions = np.asarray(predictions).ravel().astype(np.int64)
    keep = labels != ignore_label
    index = labels[keep] * num_classes + predictions[keep]
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores_from_confusion(matrix, class_names, exclude_from_mean=()):
    """IoU, F1, precision, recall per class, mIoU over all classes, mIoU without `exclude_from_mean`, accuracy.

    A class absent from both truth and prediction has IoU and F1 of 0 (it counts in
    the mean like sklearn's zero_division=0); so has a never-predicted class's
    precision and an absent class's recall. Precision and recall say which way a
    rare class's F1 is lost (over- or under-segmentation).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    iou = np.divide(tp, tp + fp + fn, out=np.zeros_like(tp), where=(tp + fp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    kept = [i for i, name in enumerate(class_names) if name not in exclude_from_mean]
    scores = {
        "miou": float(iou.mean()),
        "accuracy": float(tp.sum() / max(matrix.sum(), 1)),
        "iou": {name: float(v) for name, v in zip(class_names, iou)},
        "f1": {name: float(v) for name, v in zip(class_names, f1)},
        "precision": {name: float(v) for name, v in zip(class_names, precision)},
        "recall": {name: float(v) for name, v in zip(class_names, recall)},
    }
    if len(kept) != len(class_names):
        scores[f"miou_{len(kept)}"] = float(iou[kept].mean())
    return scores


def class_maps(probabilities):
    """(..., C) class maps; a one-channel sigmoid map p becomes the two-class map [1 − p, p]."""
    p = np.asarray(probabilities, dtype=np.float32)
    return np.concatenate([1.0 - p, p], axis=-1) if p.shape[-1] == 1 else p


def _log_class_maps(probabilities):
    """log of `class_maps`, floored at 1e-7 so a zero probability stays finite."""
    return np.log(np.maximum(class_maps(probabilities), 1e-7))


def labels_from_probabilities(probabilities, class_bias=None):
    """Class indices from (..., C) softmax maps, or from (..., 1) sigmoid maps at 0.5.

    class_bias (one log-offset per class of `class_maps`, see fit_class_bias) is
    added to the log-probabilities before the argmax.
    """
    probabilities = np.asarray(probabilities)
    if class_bias is not None:
        return (_log_class_maps(probabilities) + np.asarray(class_bias)).argmax(axis=-1).astype(np.uint8)
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] >= 0.5).astype(np.uint8)
    return probabilities.argmax(axis=-1).astype(np.uint8)


def fit_class_bias(probabilities, target_proportions, iterations=100):
    """Per-class log-offsets that make the predicted class areas of `probabilities` match `target_proportions`.

    probabilities: (N, H, W, C) class maps, or (N, H, W, 1) sigmoid maps;
    target_proportions: the C mean class proportions (one value, the foreground's,
    for sigmoid maps). A network trained on proportions may place the classes
    well yet cut them at the wrong level (a rare class over-segmented at 0.5);
    the proportions of labelled images set the cut without any mask. Fixed-point
    updates b_c += ½ (log t_c − log a_c(b)) of the areas a_c of
    labels_from_probabilities(probabilities, b); returns, with mean 0, the b
    whose areas came closest (L1), e.g. none at all for a constant map that no cut can split.
    """
    log_p = _log_class_maps(probabilities)
    log_p = log_p.reshape(-1, log_p.shape[-1])
    target = np.asarray(target_proportions, dtype=np.float64).ravel()
    if target.size == 1:
        target = np.array([1.0 - target[0], target[0]])
    if target.size != log_p.shape[1]:
        raise ValueError(f"{target.size} target proportions for {log_p.shape[1]} classes")
    bias = np.zeros(log_p.shape[1])
    best, best_error = bias, np.inf
    for _ in range(iterations):
        area = np.bincount((log_p + bias).argmax(axis=1), minlength=log_p.shape[1]) / len(log_p)
        error = np.abs(area - target).sum()
        if error < best_error:
            best, best_error = bias.copy(), error
        bias = bias + 0.5 * (np.log(target + 1e-4) - np.log(area + 1e-4))
    return best - best.mean()


@keras.saving.register_keras_serializable(package="kerasweak")
class MeanIoU(keras.metrics.Metric):
    """Streaming mIoU of class maps against label masks, with an ignore label and per-pixel weights.

    For `model.fit` progress; the recipes' reported figures come from
    `confusion_matrix` / `scores_from_confusion` over the whole test set, and
    this metric matches them: a class absent from both truth and prediction
    counts as IoU 0 in the mean. keras.metrics.MeanIoU(ignore_class=…,
    sparse_y_pred=False) instead averages over the classes present only; the
    two agree whenever every class occurs. `sample_weight` may be (B, H, W) per
    pixel or (B,) per image; each pixel adds its weight to the confusion matrix.
    The matrix is a one-hot product, not a bincount, so it compiles under any
    backend's jit. from_logits=True takes logits (the cut is the same argmax;
    one channel is cut at logit 0 instead of probability 0.5).
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, from_logits=False, name="miou", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.from_logits = bool(from_logits)
        self.matrix = self.add_variable(shape=(num_classes, num_classes), initializer="zeros", name="matrix", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        batch = ops.shape(y_pred)[0]
        labels = ops.reshape(ops.cast(y_true, "int32"), (batch, -1))
        if y_pred.shape[-1] == 1:
            predicted = ops.cast(y_pred[..., 0] >= (0.0 if self.from_logits else 0.5), "int32")
        else:
            predicted = ops.argmax(y_pred, axis=-1)
        predicted = ops.reshape(ops.cast(predicted, "int32"), (batch, -1))
        valid = ops.not_equal(labels, self.ignore_label)
        weight = ops.cast(valid, "float32")
        if sample_weight is not None:  # (B, H, W) per pixel, or (B,) per image broadcast over its pixels
            weight = weight * ops.reshape(ops.cast(sample_weight, "float32"), (batch, -1))
        truth = ops.one_hot(ops.where(valid, labels, 0), self.num_classes) * weight[..., None]
        self.matrix.assign_add(ops.einsum("bpi,bpj->ij", truth, ops.one_hot(predicted, self.num_classes)))

    def result(self):
        tp = ops.diagonal(self.matrix)
        union = ops.sum(self.matrix, axis=0) + ops.sum(self.matrix, axis=1) - tp
        return ops.mean(ops.where(union > 0, tp / ops.maximum(union, 1.0), 0.0))

    def reset_state(self):
        self.matrix.assign(ops.zeros(self.matrix.shape, dtype=self.matrix.dtype))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_label": self.ignore_label,
                "from_logits": self.from_logits}


def e_measure(pred, gt, valid=None):
    """Enhanced-alignment measure (Fan et al., IJCAI 2018) of binary maps (..., H, W) -> (...).

    φ = 2 (gt - μ_gt)(pred - μ_pred) / ((gt - μ_gt)² + (pred - μ_pred)² + eps) per
    pixel, enhanced to (1 + φ)² / 4 and averaged over the pixels. As in the
    authors' code, an all-background truth scores the fraction of background
    predicted (mean of 1 - pred) and an all-foreground truth the fraction of
    foreground predicted (mean of pred). Unlike their code, which divides the sum
    by H·W - 1, this is a plain mean, so a perfect map scores exactly 1. `valid`,
    if given, restricts the means μ and the average to its true pixels.
    """
    pred = np.asarray(pred, dtype=bool).astype(np.float64)
    gt = np.asarray(gt, dtype=bool).astype(np.float64)
    weight = np.ones_like(gt) if valid is None else np.asarray(valid, dtype=np.float64)
    count = weight.sum(axis=(-2, -1), keepdims=True)

    def mean(x):
        return (x * weight).sum(axis=(-2, -1), keepdims=True) / count

    gt_c, pred_c = gt - mean(gt), pred - mean(pred)
    align = 2 * gt_c * pred_c / (gt_c ** 2 + pred_c ** 2 + np.finfo(np.float64).eps)
    enhanced = (1 + align) ** 2 / 4
    enhanced = np.where(mean(gt) == 0, 1 - pred, np.where(mean(gt) == 1, pred, enhanced))
    return mean(enhanced)[..., 0, 0]


def class_e_measures(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """(N, C): E-measure of each image's class-c maps (prediction == c against truth == c).

    Pixels labelled `ignore_label` are left out; an image with no labelled pixel
    is NaN. Rows from several batches concatenate into one set of scores.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    valid = labels != ignore_label
    scores = np.full((len(labels), num_classes), np.nan)
    keep = valid.any(axis=(1, 2))
    for c in range(num_classes):
        scores[keep, c] = e_measure(predictions[keep] == c, labels[keep] == c, valid[keep])
    return scores


def e_measure_scores(per_image, class_names):
    """{"e_measure": mean over classes, "e_measure_per_class": {name: mean over images}} from class_e_measures rows."""
    per_class = np.nanmean(np.asarray(per_image, dtype=np.float64), axis=0)
    return {"e_measure": float(per_class.mean()),
            "e_measure_per_class": {name: float(v) for name, v in zip(class_names, per_class)}}


def trimap_confusions(labels, predictions, num_classes, widths, ignore_label=IGNORE_LABEL):
    """{w: {"boundary": (C, C), "non_boundary": (C, C)}} confusion matrices inside and outside each trimap band.

    The band of width w is `kerasweak.ops.boundary_band(labels, w)`: the pixels
    within w - 1 of a ground-truth semantic edge, i.e. w pixels each side of a
    boundary (paper section 4.3, Figs. 4-5). Edges are found on the raw labels,
    so the rim of an unlabelled area is a boundary too; the unlabelled pixels
    themselves count in neither region. Matrices from several batches add up.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    result = {}
    for width in widths:
        band = ops.convert_to_numpy(boundary_band(labels, width))
        result[width] = {region: confusion_matrix(np.where(inside, labels, ignore_label), predictions, num_classes, ignore_label)
                         for region, inside in (("boundary", band), ("non_boundary", ~band))}
    return result


def present_class_miou(matrix):
    """mIoU over the classes present in the truth or the prediction of a confusion matrix; NaN if none is.

    A trimap band can miss a class altogether; counting it as IoU 0, as
    scores_from_confusion does for whole test sets, would then penalise every
    method alike for the band's shape rather than for its errors.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean()) if present.any() else float("nan")


def trimap_miou(labels, predictions, num_classes, widths, ignore_label=IGNORE_LABEL):
    """{w: {"boundary": mIoU, "non_boundary": mIoU}} for each band width w (see trimap_confusions, present_class_miou)."""
    confusions = trimap_confusions(labels, predictions, num_classes, widths, ignore_label)
    return {width: {region: present_class_miou(matrix) for region, matrix in regions.items()}
            for width, regions in confusions.items()}
