"""Degraded proportions for the paper's sensitivity studies (section 3.2, Tables 3 and 4)."""

import numpy as np

from ..errors import KerasweakError

DEGRADE_MODES = ("softmax", "clip")


def noisy_proportions(proportions, sigma, seed, mode="softmax"):
    """(N, C) proportions plus N(0, sigma) noise per entry, renormalised row by row.

    mode="softmax" is eq. 5 as written: softmax(ρ + noise). Softmax of values in
    [0, 1] pulls every row towards uniform (softmax of (1, 0, 0, 0, 0, 0) is
    (0.35, 0.13, …)), so even sigma = 0 changes the proportions. mode="clip" clips
    at 0 and divides by the row sum, so sigma = 0 returns the input; a row whose
    entries all clip to 0 becomes uniform. sigma is absolute: 0.1 is "10% noise".
    """
    if mode not in DEGRADE_MODES:
        raise ValueError(f"mode must be one of {DEGRADE_MODES}, got {mode!r}")
    p = np.asarray(proportions, dtype=np.float64)
    noisy = p + np.random.default_rng(seed).normal(0.0, sigma, size=p.shape)
    if mode == "softmax":
        exp = np.exp(noisy - noisy.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    clipped = np.maximum(noisy, 0.0)
    totals = clipped.sum(axis=1, keepdims=True)
    uniform = np.full_like(clipped, 1.0 / p.shape[1])
    return np.where(totals > 0, clipped / np.where(totals > 0, totals, 1.0), uniform).astype(np.float32)


def clustered_proportions(proportions, k, seed):
    """Every image gets the proportions of one random member of its K-means cluster.

    The paper's three steps: K-means (scikit-learn) on the (N, C) training
    proportions into k clusters; group the images by cluster; give all images of
    a cluster the proportions of one of them, chosen at random. With distinct
    rows the result has exactly k distinct rows, k of them unchanged.
    """
    from sklearn.cluster import KMeans

    p = np.asarray(proportions, dtype=np.float32)
    if not 1 <= k <= len(p):
        raise ValueError(f"k must be between 1 and the number of images ({len(p)}), got {k}")
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(p)
    rng = np.random.default_rng(seed)
    degraded = p.copy()
    for cluster in np.unique(clusters):
        members = np.flatnonzero(clusters == cluster)
        degraded[members] = p[rng.choice(members)]
    return degraded


def degrade_proportions(settings, proportions, where=None):
    """(N, C) proportions degraded by a recipe's [degrade] section (paper section 3.2); unchanged without clusters or noise.

    clusters = K: K-means, every image gets one cluster member's proportions;
    noise = σ in percent: eq. 5, renormalised by mode = "softmax" (the paper) or
    "clip". Both: clusters first. seed fixes the degradation, so every training
    seed sees the same labels.
    """
    k, noise, seed = settings["clusters"], settings["noise"], settings["seed"]
    if k is not None:
        if k > len(proportions):
            raise KerasweakError(f"[degrade] clusters must be an integer from 1 to the {len(proportions)} training "
                                 f"and validation patches, got {k!r}", where)
        proportions = clustered_proportions(proportions, k, seed)
    return proportions if noise is None else noisy_proportions(proportions, noise / 100, seed, settings["mode"])
