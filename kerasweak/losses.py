"""Losses. Each is a short registered class over a functional core in this module."""

import keras
import numpy as np
from keras import ops

from .data.dataset import IGNORE_LABEL

EPSILON = 1e-7


def proportion_mse(y_true, y_pred):
    """Paper eq. 1 per image: squared L2 distance between proportion vectors, summed over classes."""
    return ops.sum(ops.square(ops.cast(y_true, "float32") - ops.cast(y_pred, "float32")), axis=-1)


def proportion_kl(y_true, y_pred):
    """KL(target ‖ predicted) = Σ_c t_c log(t_c / p_c); classes with t_c = 0 contribute 0."""
    t = ops.cast(y_true, "float32")
    p = ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0)
    return ops.sum(ops.where(t > 0, t * (ops.log(ops.maximum(t, EPSILON)) - ops.log(p)), 0.0), axis=-1)


PROPORTION_FORMS = {"mse": proportion_mse, "kl": proportion_kl}


@keras.saving.register_keras_serializable(package="kerasweak")
class ProportionLoss(keras.losses.Loss):
    """Loss between given and predicted class proportions, (B, C) each.

    form="mse" is the paper's L_sp (eq. 1); form="kl" is KL(target ‖ predicted).
    """

    def __init__(self, form="mse", name="proportion_loss", reduction="sum_over_batch_size", dtype=None):
        if form not in PROPORTION_FORMS:
            raise ValueError(f"ProportionLoss form must be one of {sorted(PROPORTION_FORMS)}, got {form!r}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.form = form

    def call(self, y_true, y_pred):
        return PROPORTION_FORMS[self.form](y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "form": self.form}


def pixel_cross_entropy(y_true, y_pred, ignore_label=IGNORE_LABEL):
    """Per-pixel cross-entropy of probability maps (B, H, W, C) against labels (B, H, W).

    C = 1 means a sigmoid map and binary labels. Pixels labelled `ignore_label`
    contribute nothing; the result is each image's mean over its labelled pixels.
    """
    labels = ops.cast(y_true, "int32")
    if len(labels.shape) == len(y_pred.shape):
        labels = ops.squeeze(labels, axis=-1)
    probs = ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0 - EPSILON)
    valid = ops.cast(ops.not_equal(labels, ignore_label), "float32")
    safe = ops.where(labels == ignore_label, 0, labels)
    if probs.shape[-1] == 1:
        p = probs[..., 0]
        target = ops.cast(safe, "float32")
        per_pixel = -(target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p))
    else:
        per_pixel = -ops.log(ops.sum(probs * ops.one_hot(safe, probs.shape[-1]), axis=-1))
    total = ops.sum(per_pixel * valid, axis=(1, 2))
    return total / ops.maximum(ops.sum(valid, axis=(1, 2)), 1.0)


@keras.saving.register_keras_serializable(package="kerasweak")
class PixelCrossEntropy(keras.losses.Loss):
    """Per-pixel cross-entropy on masks with an ignore label: the paper's benchmark method."""

    def __init__(self, ignore_label=IGNORE_LABEL, name="pixel_cross_entropy", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_label = ignore_label

    def call(self, y_true, y_pred):
        return pixel_cross_entropy(y_true, y_pred, self.ignore_label)

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label}


def pack_keypoints(labels, weights):
    """The KeypointLoss target: labels and weights, (N, H, W, C) each, stacked to (N, H, W, 2C) uint8.

    labels[..., j] is the binary class-j label at annotated pixels; weights[..., j]
    is 1 where class j is annotated (its keypoint set Λ^{ij}) and 0 elsewhere.
    uint8 keeps a dataset at two bytes per pixel per class; the loss casts it.
    """
    labels, weights = np.asarray(labels), np.asarray(weights)
    if labels.shape != weights.shape:
        raise ValueError(f"keypoint labels {labels.shape} and weights {weights.shape} must have the same shape")
    return np.concatenate([labels, weights], axis=-1).astype(np.uint8)


def keypoint_bce(y_true, y_pred):
    """Paper eq. 3 per image: Σ_j Σ_{(m,h) ∈ Λ^{ij}} f_ij(m, h) / |Λ^{ij}|, f_ij the BCE of eq. 2.

    y_true is (B, H, W, 2C) from pack_keypoints: C channels of binary labels,
    then C channels of 0/1 weights marking Λ^{ij}. y_pred is (B, H, W, C) class
    maps (softmax, or one sigmoid channel). Classes and images without keypoints
    contribute 0.
    """
    num_classes = y_pred.shape[-1]
    if y_true.shape[-1] != 2 * num_classes:
        raise ValueError(f"keypoint target has {y_true.shape[-1]} channels, expected 2 x {num_classes} (labels, weights)")
    target = ops.cast(y_true, "float32")
    labels, weights = target[..., :num_classes], target[..., num_classes:]
    p = ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0 - EPSILON)
    bce = -(labels * ops.log(p) + (1.0 - labels) * ops.log(1.0 - p))
    per_class = ops.sum(bce * weights, axis=(1, 2)) / ops.maximum(ops.sum(weights, axis=(1, 2)), 1.0)
    return ops.sum(per_class, axis=-1)


@keras.saving.register_keras_serializable(package="kerasweak")
class KeypointLoss(keras.losses.Loss):
    """The paper's L_sk (eq. 3): BCE at a few annotated keypoints, as a sparse target.

    y_true is pack_keypoints(labels, weights), (B, H, W, 2C); y_pred the (B, H, W, C)
    class maps. The default reduction averages the per-image sums over the batch,
    images without keypoints counting as 0, the same scaling as L_sp (eq. 1), so
    that α in eq. 4 weighs comparable quantities.
    """

    def __init__(self, name="keypoint_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return keypoint_bce(y_true, y_pred)

    def get_config(self):
        return super().get_config()
