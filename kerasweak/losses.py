"""Losses. Each is a short registered class over a functional core in this module."""

import keras
import numpy as np
from keras import ops

from .data.dataset import IGNORE_LABEL
from .layers import SemedaNet
from .ops.edges import sobel_edges

EPSILON = 1e-7


def proportion_mse(y_true, y_pred):
    """Paper eq. 1 per image: squared L2 distance between proportion vectors, summed over classes."""
    return ops.sum(ops.square(ops.cast(y_true, "float32") - ops.cast(y_pred, "float32")), axis=-1)


def _with_complement(proportions):
    """A one-class proportion (B, 1), the mean of one sigmoid map, as the two-class distribution [1 - p, p]."""
    return ops.concatenate([1.0 - proportions, proportions], axis=-1) if proportions.shape[-1] == 1 else proportions


def proportion_kl(y_true, y_pred):
    """KL(target ‖ predicted) = Σ_c t_c log(t_c / p_c); classes with t_c = 0 contribute 0.

    A one-sigmoid proportion p is scored as the distribution [1 - p, p]: without
    the complement, t log(t / p) alone would be lowest at p = 1.
    """
    t = _with_complement(ops.cast(y_true, "float32"))
    p = ops.clip(_with_complement(ops.cast(y_pred, "float32")), EPSILON, 1.0)
    return ops.sum(ops.where(t > 0, t * (ops.log(ops.maximum(t, EPSILON)) - ops.log(p)), 0.0), axis=-1)


def proportion_mse_kl(y_true, y_pred):
    """proportion_mse + proportion_kl, unweighted: the squared error pulls every class, the KL weighs rare ones by log-ratio."""
    return proportion_mse(y_true, y_pred) + proportion_kl(y_true, y_pred)


PROPORTION_FORMS = {"mse": proportion_mse, "kl": proportion_kl, "mse+kl": proportion_mse_kl}


@keras.saving.register_keras_serializable(package="kerasweak")
class ProportionLoss(keras.losses.Loss):
    """Loss between given and predicted class proportions, (B, C) each.

    form="mse" is the paper's L_sp (eq. 1); form="kl" is KL(target ‖ predicted);
    form="mse+kl" is their sum (MSE + KL(target ‖ predicted), equal weights).
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


def _label_map(y_true, y_pred):
    """(B, H, W) int32 labels from a (B, H, W) or (B, H, W, 1) target."""
    labels = ops.cast(y_true, "int32")
    if len(labels.shape) == len(y_pred.shape):
        labels = ops.squeeze(labels, axis=-1)
    return labels


def pixel_cross_entropy(y_true, y_pred, ignore_label=IGNORE_LABEL):
    """Per-pixel cross-entropy of probability maps (B, H, W, C) against labels (B, H, W).

    C = 1 means a sigmoid map and binary labels. Pixels labelled `ignore_label`
    contribute nothing; the result is each image's mean over its labelled pixels.
    """
    labels = _label_map(y_true, y_pred)
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


def one_hot_labels(labels, num_classes, ignore_label=IGNORE_LABEL):
    """(B, H, W) labels -> (B, H, W, C) float32 one-hot maps; pixels labelled `ignore_label` are zero vectors."""
    labels = ops.cast(labels, "int32")
    valid = ops.not_equal(labels, ignore_label)
    return ops.one_hot(ops.where(valid, labels, 0), num_classes) * ops.cast(valid, "float32")[..., None]


def _compared_maps(y_true, y_pred, ignore_label):
    """The predicted class maps and the one-hot target, (B, H, W, C) float32 each, for an edge comparison.

    Ignored pixels are zero vectors in both, so they add no difference of their
    own. A one-channel sigmoid map p becomes the two-class map [1 - p, p].
    """
    probs = ops.cast(y_pred, "float32")
    if probs.shape[-1] == 1:
        probs = ops.concatenate([1.0 - probs, probs], axis=-1)
    target = one_hot_labels(_label_map(y_true, y_pred), probs.shape[-1], ignore_label)
    valid = ops.sum(target, axis=-1, keepdims=True)
    return probs * valid, target


def _mean_abs_difference(a, b):
    """Per-image L1 distance normalised as a mean over pixels and channels, so a weight means the same at every size."""
    return ops.mean(ops.abs(a - b), axis=(1, 2, 3))


SEMEDA_LAMBDAS = (4.0, 2.0, 0.0)
SOBEL_LAMBDA = 4.0


def semeda_loss(y_true, y_pred, edge_net, lambdas=SEMEDA_LAMBDAS, ignore_label=IGNORE_LABEL):
    """Paper eq. 6 per image: pixel_cross_entropy + Σ_l λ_l ‖ψ̂_l − ψ*_l‖₁ (eq. 4-5).

    ψ̂_l and ψ*_l are edge_net's layer-l outputs on the predicted class maps and
    on the one-hot target (see `_compared_maps` for ignored pixels and sigmoid
    maps); each ‖·‖₁ is a mean over pixels and channels. Layers with λ_l = 0 add
    nothing, so edge_net runs only up to the last layer with λ_l ≠ 0, and λ = 0
    gives pixel_cross_entropy exactly. The edge net computes in the global dtype
    policy's compute dtype (bfloat16 under mixed_bfloat16, like the segmenter);
    the differences are taken in float32.
    """
    cross_entropy = pixel_cross_entropy(y_true, y_pred, ignore_label)
    depth = max((layer + 1 for layer, lam in enumerate(lambdas) if lam), default=0)
    if not depth:
        return cross_entropy
    compute_dtype = keras.config.dtype_policy().compute_dtype
    predicted, target = _compared_maps(y_true, y_pred, ignore_label)
    pairs = zip(lambdas, edge_net.embeddings(predicted, depth, compute_dtype), edge_net.embeddings(target, depth, compute_dtype))
    return cross_entropy + sum(lam * _mean_abs_difference(ops.cast(psi_hat, "float32"), ops.cast(psi_star, "float32"))
                               for lam, psi_hat, psi_star in pairs if lam)


@keras.saving.register_keras_serializable(package="kerasweak")
class SemedaLoss(keras.losses.Loss):
    """The SEMEDA loss (eq. 6): per-pixel CE plus an L1 match in the embeddings of a frozen SemedaNet.

    `edge_net` is a trained SemedaNet (kerasweak.models.train_semeda). The default
    λ = (4, 2, 0) is Table 1's best Cityscapes setting (77.3 mIoU; 78.6 on VOC 2012,
    the best mean over the two datasets). The L1 terms are means over pixels and
    channels, and g_φ computes in the dtype policy's compute dtype (see
    `semeda_loss`). The config carries the edge net's architecture and its
    trained weights, so a model compiled with this loss reloads with the same g_φ.
    """

    def __init__(self, edge_net, lambdas=SEMEDA_LAMBDAS, ignore_label=IGNORE_LABEL, name="semeda_loss",
                 reduction="sum_over_batch_size", dtype=None):
        if len(lambdas) != len(SemedaNet.WIDTHS):
            raise ValueError(f"SemedaLoss needs one λ per SemedaNet layer ({len(SemedaNet.WIDTHS)}), got {list(lambdas)}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not edge_net.built:
            edge_net.build((None, None, None, edge_net.num_classes))
        self.edge_net = edge_net
        self.lambdas = tuple(float(lam) for lam in lambdas)
        self.ignore_label = ignore_label

    def call(self, y_true, y_pred):
        return semeda_loss(y_true, y_pred, self.edge_net, self.lambdas, self.ignore_label)

    def get_config(self):
        return {**super().get_config(), "edge_net": keras.saving.serialize_keras_object(self.edge_net),
                "edge_weights": [w.tolist() for w in self.edge_net.get_weights()],
                "lambdas": list(self.lambdas), "ignore_label": self.ignore_label}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        edge_net = keras.saving.deserialize_keras_object(config.pop("edge_net"))
        weights = config.pop("edge_weights")
        loss = cls(edge_net, **config)
        edge_net.set_weights([np.asarray(w, dtype="float32") for w in weights])
        return loss


def sobel_edge_loss(y_true, y_pred, lam=SOBEL_LAMBDA, ignore_label=IGNORE_LABEL):
    """The Sobel baseline per image (section 4.1): pixel_cross_entropy + λ ‖sobel(Ŝ) − sobel(S*)‖₁.

    sobel is `kerasweak.ops.sobel_edges`, each class channel on its own; the L1 is
    a mean over pixels and classes, as in SemedaLoss.
    """
    predicted, target = _compared_maps(y_true, y_pred, ignore_label)
    edge_term = lam * _mean_abs_difference(sobel_edges(predicted), sobel_edges(target))
    return pixel_cross_entropy(y_true, y_pred, ignore_label) + edge_term


@keras.saving.register_keras_serializable(package="kerasweak")
class SobelEdgeLoss(keras.losses.Loss):
    """The paper's Sobel baseline: per-pixel CE plus λ times the L1 distance of per-class Sobel edge maps.

    The default λ = 4 is the best Sobel setting of Table 1 (76.3 Cityscapes, 77.6 VOC 2012).
    """

    def __init__(self, lam=SOBEL_LAMBDA, ignore_label=IGNORE_LABEL, name="sobel_edge_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lam = float(lam)
        self.ignore_label = ignore_label

    def call(self, y_true, y_pred):
        return sobel_edge_loss(y_true, y_pred, self.lam, self.ignore_label)

    def get_config(self):
        return {**super().get_config(), "lam": self.lam, "ignore_label": self.ignore_label}
