"""Losses from class proportions beyond ProportionLoss (issue 33), in the style of kerasweak.losses.

Each is a pure keras.ops function plus a thin registered class (from_logits,
reduction, name). The target is always the images' class proportions (B, C):
IntervalProportionLoss scores the predicted proportions (B, C), PseudoLabelLoss,
ClassPresenceLoss and EntropyLoss the class maps (B, H, W, C), the extra outputs of
models.build_spss_signals. One sigmoid channel p counts as the two classes [1 − p, p].
"""

import keras
from keras import ops

from .layers import class_probabilities
from .losses import log_complements, log_probabilities, pixel_cross_entropy
from .ops.proportions import (absent_class_penalty, log_barrier, present_class_penalty, sinkhorn_labels,
                              sorted_labels)

BARRIER_T = 5.0  # Kervadec et al.'s starting t


def predicted_probabilities(y_pred, from_logits=False):
    """Class maps or proportions as float32 probabilities (from logits: layers.class_probabilities)."""
    return class_probabilities(y_pred) if from_logits else ops.cast(y_pred, "float32")


def interval_barrier(y_true, y_pred, tolerance=0.05, t=BARRIER_T, from_logits=False):
    """Per image: Σ_c ψ_t(v_c − 1), v_c = max(0, |ρ̂_c − ρ_c| − tolerance) the distance outside the interval ρ_c ± tolerance.

    A predicted proportion inside the interval costs exactly 0 (ψ_t(−1) = 0), so
    noisy or approximate proportions are followed only up to the tolerance.
    Outside, the cost is Kervadec et al.'s extended log-barrier
    (ops.proportions.log_barrier) against the largest possible violation 1:
    −log(1 − v)/t, linear past v = 1 − 1/t²; near the interval it grows about as v/t.
    """
    violation = ops.relu(ops.abs(predicted_probabilities(y_pred, from_logits) - ops.cast(y_true, "float32")) - tolerance)
    return ops.sum(log_barrier(violation - 1.0, t), axis=-1)


def proportion_pseudo_labels(proportions, y_pred, temperature=0.1, iterations=50, from_logits=False):
    """(B, H, W) int32 hard labels, per image the class counts of its proportions, agreeing most with the maps; no gradient.

    Two classes (or one sigmoid channel): the exact assignment, the round(P · ρ)
    pixels of highest log p1 − log p0 (ops.proportions.sorted_labels); more:
    the argmax of the Sinkhorn plan at `temperature` (sinkhorn_labels), whose
    class counts approach P · ρ as the temperature falls and the iterations grow.
    """
    rho = ops.cast(proportions, "float32")
    log_p = log_probabilities(y_pred, from_logits)
    batch, height, width, classes = ops.shape(log_p)
    if classes == 1:
        score, foreground = log_p[..., 0] - log_complements(y_pred, from_logits)[..., 0], rho[:, 0]
    elif classes == 2:
        score, foreground = log_p[..., 1] - log_p[..., 0], rho[:, 1]
    else:
        return ops.stop_gradient(sinkhorn_labels(ops.exp(log_p), rho, temperature, iterations))
    labels = sorted_labels(ops.reshape(score, (batch, height * width)), foreground)
    return ops.stop_gradient(ops.reshape(labels, (batch, height, width)))


def pseudo_label_cross_entropy(y_true, y_pred, temperature=0.1, iterations=50, from_logits=False):
    """Per image: the pixel cross-entropy of the class maps against their proportion_pseudo_labels (y_true: the proportions)."""
    labels = proportion_pseudo_labels(y_true, y_pred, temperature, iterations, from_logits)
    return pixel_cross_entropy(labels, y_pred, from_logits=from_logits)


def class_presence(y_true, y_pred, absent_weight=1.0, present_weight=0.0, absent_top_k=1, present_top_k=16,
                   from_logits=False):
    """Per image: absent_weight · absent_class_penalty + present_weight · present_class_penalty (ops.proportions).

    A class of proportion 0 is pushed down by the mean of its top-k
    probabilities (k = 1: its maximum); a present class is asked for k confident
    pixels (−log of their mean). k is at most the image's pixels; a 0 weight skips its term.
    """
    maps, rho = predicted_probabilities(y_pred, from_logits), ops.cast(y_true, "float32")
    if maps.shape[-1] == 1:
        maps, rho = ops.concatenate([1.0 - maps, maps], axis=-1), ops.concatenate([1.0 - rho, rho], axis=-1)
    pixels = maps.shape[1] * maps.shape[2] if maps.shape[1] and maps.shape[2] else None
    fit = (lambda k: min(k, pixels)) if pixels else (lambda k: k)
    total = ops.zeros_like(rho[:, 0])
    if absent_weight:
        total = total + absent_weight * absent_class_penalty(rho, maps, fit(absent_top_k))
    if present_weight:
        total = total + present_weight * present_class_penalty(rho, maps, fit(present_top_k))
    return total


def mean_pixel_entropy(y_true, y_pred, from_logits=False):
    """Per image: the mean over pixels of −Σ_c p_c log p_c, in nats (y_true, the proportions, is not read).

    Entropy minimisation (Grandvalet and Bengio, 2005): beside the proportion
    loss it pushes the class maps from soft areas of the right size towards
    confident pixels. One sigmoid channel p counts as the two classes [1 − p, p].
    """
    log_p = log_probabilities(y_pred, from_logits)
    entropy = -ops.sum(ops.exp(log_p) * log_p, axis=-1)
    if log_p.shape[-1] == 1:
        log_q = log_complements(y_pred, from_logits)
        entropy = entropy - ops.sum(ops.exp(log_q) * log_q, axis=-1)
    return ops.mean(entropy, axis=(1, 2))


@keras.saving.register_keras_serializable(package="kerasweak")
class IntervalProportionLoss(keras.losses.Loss):
    """Proportion loss that is 0 within ± tolerance of the given proportions and a log-barrier outside (`interval_barrier`).

    For approximate or noisy proportions: unlike ProportionLoss it does not pull
    the prediction onto the given value, only into the interval around it.
    """

    def __init__(self, tolerance=0.05, t=BARRIER_T, from_logits=False, name="interval_proportion_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.tolerance = float(tolerance)
        self.t = float(t)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return interval_barrier(y_true, y_pred, self.tolerance, self.t, self.from_logits)

    def get_config(self):
        return {**super().get_config(), "tolerance": self.tolerance, "t": self.t, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="kerasweak")
class PseudoLabelLoss(keras.losses.Loss):
    """Pixel cross-entropy against hard labels that match each image's proportions (`pseudo_label_cross_entropy`).

    y_true: the proportions (B, C); y_pred: the class maps (B, H, W, C). The
    labels come from the current prediction inside the loss, without gradient,
    so a plain model.fit trains on them: a per-pixel signal from proportions alone.
    """

    def __init__(self, temperature=0.1, iterations=50, from_logits=False, name="pseudo_label_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = float(temperature)
        self.iterations = int(iterations)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return pseudo_label_cross_entropy(y_true, y_pred, self.temperature, self.iterations, self.from_logits)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "iterations": self.iterations,
                "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="kerasweak")
class ClassPresenceLoss(keras.losses.Loss):
    """Penalties on the class maps from which classes an image's proportions say are absent or present (`class_presence`).

    y_true: the proportions (B, C); y_pred: the class maps (B, H, W, C).
    """

    def __init__(self, absent_weight=1.0, present_weight=0.0, absent_top_k=1, present_top_k=16, from_logits=False,
                 name="class_presence_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.absent_weight, self.present_weight = float(absent_weight), float(present_weight)
        self.absent_top_k, self.present_top_k = int(absent_top_k), int(present_top_k)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return class_presence(y_true, y_pred, self.absent_weight, self.present_weight, self.absent_top_k,
                              self.present_top_k, self.from_logits)

    def get_config(self):
        return {**super().get_config(), "absent_weight": self.absent_weight, "present_weight": self.present_weight,
                "absent_top_k": self.absent_top_k, "present_top_k": self.present_top_k, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="kerasweak")
class EntropyLoss(keras.losses.Loss):
    """The class maps' mean pixel entropy (`mean_pixel_entropy`); y_true (the proportions) is accepted and not read."""

    def __init__(self, from_logits=False, name="entropy_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return mean_pixel_entropy(y_true, y_pred, self.from_logits)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}
