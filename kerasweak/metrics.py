"""Segmentation metrics from a confusion matrix (the paper's Table 1 figures).

mIoU averages per-class IoU over the classes (the dataset-level confusion matrix,
all test pixels pooled); "mean accuracy" is overall pixel accuracy, as the paper
reports it (see ../shared/papers/NOTES.md). Pixels labelled IGNORE_LABEL are left out.
"""

import keras
import numpy as np
from keras import ops

from .data.dataset import IGNORE_LABEL


def confusion_matrix(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """(C, C) counts; rows are true classes, columns predicted classes."""
    labels = np.asarray(labels).ravel().astype(np.int64)
    predictions = np.asarray(predictions).ravel().astype(np.int64)
    keep = labels != ignore_label
    index = labels[keep] * num_classes + predictions[keep]
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores_from_confusion(matrix, class_names, exclude_from_mean=()):
    """IoU, F1 per class, mIoU over all classes, mIoU without `exclude_from_mean`, accuracy.

    A class absent from both truth and prediction has IoU and F1 of 0 (it counts in
    the mean like sklearn's zero_division=0).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    iou = np.divide(tp, tp + fp + fn, out=np.zeros_like(tp), where=(tp + fp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    kept = [i for i, name in enumerate(class_names) if name not in exclude_from_mean]
    scores = {
        "miou": float(iou.mean()),
        "accuracy": float(tp.sum() / max(matrix.sum(), 1)),
        "iou": {name: float(v) for name, v in zip(class_names, iou)},
        "f1": {name: float(v) for name, v in zip(class_names, f1)},
    }
    if len(kept) != len(class_names):
        scores[f"miou_{len(kept)}"] = float(iou[kept].mean())
    return scores


def labels_from_probabilities(probabilities):
    """Class indices from (..., C) softmax maps, or from (..., 1) sigmoid maps at 0.5."""
    probabilities = np.asarray(probabilities)
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] >= 0.5).astype(np.uint8)
    return probabilities.argmax(axis=-1).astype(np.uint8)


@keras.saving.register_keras_serializable(package="kerasweak")
class MeanIoU(keras.metrics.Metric):
    """Streaming mIoU of probability maps against label masks, with an ignore label.

    For `model.fit` progress; the recipes' reported figures come from
    `confusion_matrix` / `scores_from_confusion` over the whole test set.
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, name="miou", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.matrix = self.add_variable(shape=(num_classes, num_classes), initializer="zeros", name="matrix", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        if y_pred.shape[-1] == 1:
            predicted = ops.cast(y_pred[..., 0] >= 0.5, "int32")
        else:
            predicted = ops.argmax(y_pred, axis=-1)
        predicted = ops.reshape(ops.cast(predicted, "int32"), (-1,))
        valid = ops.not_equal(labels, self.ignore_label)
        index = ops.where(valid, labels * self.num_classes + predicted, 0)
        counts = ops.bincount(index, weights=ops.cast(valid, "float32"), minlength=self.num_classes ** 2)
        self.matrix.assign_add(ops.reshape(counts[: self.num_classes ** 2], (self.num_classes, self.num_classes)))

    def result(self):
        tp = ops.diagonal(self.matrix)
        union = ops.sum(self.matrix, axis=0) + ops.sum(self.matrix, axis=1) - tp
        return ops.mean(ops.where(union > 0, tp / ops.maximum(union, 1.0), 0.0))

    def reset_state(self):
        self.matrix.assign(ops.zeros_like(self.matrix))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_label": self.ignore_label}
