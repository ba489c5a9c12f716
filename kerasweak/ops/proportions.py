"""Signals from class proportions beyond SPSS's MSE, as pure keras.ops functions (issue: proportion learning).

- `sinkhorn_plan` / `sinkhorn_labels`: the labelling of an image's pixels whose
  class counts match the image's proportions and that agrees most with the
  network (entropic optimal transport between pixels and classes, a few
  Sinkhorn iterations in the log domain); `sorted_labels` is the exact answer
  for two classes.
- `absent_class_penalty`: a class whose proportion is 0 should have no pixel,
  so its top-k mean probability is pushed to 0; `present_class_penalty` asks a
  present class for some confident pixels.
- `interval_penalty`: log-barriers keeping the predicted proportion inside
  [ρ − tolerance, ρ + tolerance] (Kervadec et al.'s constrained CNNs), for
  approximate proportions.
- `mean_entropy`: the mean per-pixel entropy of the class maps (entropy minimisation).

Maps are (B, H, W, C) probabilities, proportions (B, C) rows summing to 1.
"""

from keras import ops

EPSILON = 1e-7


def sinkhorn_plan(log_probabilities, proportions, temperature=1.0, iterations=20):
    """(B, P, C) transport plan: each pixel's unit mass spread over classes, class c receiving P · ρ_c in total.

    log_probabilities: (B, P, C) the network's per-pixel log-probabilities; the
    plan maximises Σ plan · log p / temperature plus its entropy. The last
    iteration scales the classes, so the class sums equal P · ρ exactly (up to
    rounding); pixel sums approach 1 as the iterations go on. A class with ρ = 0
    gets no mass.
    """
    log_kernel = log_probabilities / temperature
    pixels = ops.cast(ops.shape(log_kernel)[1], log_kernel.dtype)
    proportions = ops.cast(proportions, log_kernel.dtype)[:, None, :]
    present = proportions > 0
    log_mass = ops.log(ops.where(present, proportions * pixels, 1.0))
    column = ops.where(present, 0.0, -float("inf"))  # absent classes get no mass
    for _ in range(iterations):
        # The row scaling normalises each pixel over the classes: a softmax. Given it, the column scaling
        # log_mass − logsumexp_pixels(log_kernel + row) is the old column plus log_mass − log(class sums of
        # the plan), so one exponential pass over (B, P, C) does both (logsumexp twice would take two).
        plan = ops.softmax(log_kernel + column, axis=2)
        rescale = ops.where(present, log_mass - ops.log(ops.sum(plan, axis=1, keepdims=True)), 0.0)
        column = column + rescale
    return plan * ops.exp(rescale)


def sinkhorn_labels(probabilities, proportions, temperature=1.0, iterations=20):
    """(B, H, W) int32 pseudo-labels: the class of most mass in the Sinkhorn plan of each pixel."""
    batch, height, width, classes = ops.shape(probabilities)
    log_p = ops.log(ops.clip(ops.reshape(probabilities, (batch, height * width, classes)), EPSILON, 1.0))
    plan = sinkhorn_plan(log_p, proportions, temperature, iterations)
    return ops.reshape(ops.cast(ops.argmax(plan, axis=-1), "int32"), (batch, height, width))


def sorted_labels(foreground, proportion):
    """The exact count-matching labelling for two classes: the round(P · ρ) pixels of highest `foreground` score are 1.

    foreground: (..., P) scores (e.g. log p1 − log p0) of each image; proportion: (...) their foreground fractions.
    """
    pixels = ops.shape(foreground)[-1]
    count = ops.cast(ops.round(ops.convert_to_tensor(proportion, "float32") * pixels), "int32")
    rank = ops.argsort(ops.argsort(-foreground, axis=-1), axis=-1)  # 0 for the highest score
    return ops.cast(rank < ops.expand_dims(count, -1), "int32")


def _top_k_mean(maps, k):
    """(B, C) mean of each class map's k largest probabilities."""
    batch, height, width, classes = ops.shape(maps)
    flat = ops.transpose(ops.reshape(maps, (batch, height * width, classes)), (0, 2, 1))
    return ops.mean(ops.top_k(flat, k, sorted=False)[0], axis=-1)


def absent_class_penalty(proportions, maps, k=1):
    """(B,) mean over the classes with ρ = 0 of their top-k mean probability (0 where every class is present)."""
    absent = ops.cast(proportions <= 0, maps.dtype)
    return ops.sum(absent * _top_k_mean(maps, k), axis=-1) / ops.maximum(ops.sum(absent, axis=-1), 1.0)


def present_class_penalty(proportions, maps, k=16):
    """(B,) mean over the classes with ρ > 0 of −log of their top-k mean probability: each present class needs confident pixels."""
    present = ops.cast(proportions > 0, maps.dtype)
    penalty = -ops.log(ops.clip(_top_k_mean(maps, k), EPSILON, 1.0))
    return ops.sum(present * penalty, axis=-1) / ops.maximum(ops.sum(present, axis=-1), 1.0)


def log_barrier(z, t=5.0):
    """Kervadec et al.'s extended log-barrier ψ_t of a constraint z ≤ 0: −log(−z)/t up to z = −1/t², then its tangent line."""
    edge = 1.0 / t ** 2
    barrier = -ops.log(ops.maximum(-z, edge)) / t
    line = t * z - ops.log(edge) / t + 1.0 / t
    return ops.where(z <= -edge, barrier, line)


def interval_penalty(proportions, predicted, tolerance=0.05, t=5.0):
    """(B,) mean over classes of ψ_t(ρ̂ − (ρ + tol)) + ψ_t((ρ − tol) − ρ̂): ρ̂ kept inside [ρ − tol, ρ + tol].

    Unlike MSE it does not pull ρ̂ to the given ρ, only into the interval around
    it, for noisy or approximate proportions (constrained CNNs with log-barrier
    extensions, Kervadec et al. 2019); t sets how sharply the walls rise.
    """
    return ops.mean(log_barrier(predicted - (proportions + tolerance), t)
                    + log_barrier((proportions - tolerance) - predicted, t), axis=-1)


def mean_entropy(maps):
    """(B,) mean over pixels of the class distribution's entropy, in nats."""
    p = ops.clip(maps, EPSILON, 1.0)
    return ops.mean(-ops.sum(p * ops.log(p), axis=-1), axis=(1, 2))
