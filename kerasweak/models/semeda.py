"""Training and caching the SEMEDA edge network g_φ (paper section 3.3, the first loop of Algorithm 1)."""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..data.dataset import IGNORE_LABEL
from ..data.pipeline import batch_for_replicas, prefetched
from ..io import atomic_path
from ..layers import SemedaNet
from ..losses import PixelCrossEntropy, one_hot_labels
from ..ops.edges import semantic_edges


def _as_model(edge_net):
    """A model around the net: what `fit` trains and what a .keras file holds."""
    inputs = keras.Input(shape=(None, None, edge_net.num_classes), name="class_maps")
    return keras.Model(inputs, edge_net(inputs), name=f"{edge_net.name}_model")


def train_semeda(masks, num_classes, epochs=10, batch_size=16, learning_rate=5e-4, seed=0, verbose=0):
    """Train g_φ on ground-truth masks and return it frozen.

    masks: (N, H, W) class indices, IGNORE_LABEL where unlabelled. The input is
    their one-hot maps (unlabelled pixels as zero vectors), the target their
    `semantic_edges`, the loss per-pixel CE (eq. 7, as a mean over pixels);
    Adam at the paper's 5e-4; `seed` fixes the shuffling. For a one-sigmoid segmenter pass num_classes=2:
    SemedaLoss feeds its map as [1 - p, p].
    """
    masks = np.asarray(masks)
    shuffled = tf.data.Dataset.from_tensor_slices(masks).shuffle(len(masks), seed=seed)
    batches = prefetched(batch_for_replicas(shuffled, batch_size, len(masks))
                         .map(lambda m: (one_hot_labels(m, num_classes, IGNORE_LABEL), semantic_edges(m))))
    edge_net = SemedaNet(num_classes, name="semeda")
    model = _as_model(edge_net)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=PixelCrossEntropy())
    model.fit(batches, epochs=epochs, shuffle=False, verbose=verbose)
    edge_net.trainable = False
    return edge_net


def load_or_train_semeda(cache_dir, dataset_name, num_classes, masks, **train_options):
    """The frozen g_φ cached as CACHE_DIR/semeda-DATASET-<C>classes.keras, trained (train_semeda) if absent.

    One file per dataset and class count; it is written atomically, so an
    interrupted run never leaves a half-written cache.
    """
    path = Path(cache_dir) / f"semeda-{dataset_name}-{num_classes}classes.keras"
    if path.exists():
        return keras.saving.load_model(path).get_layer("semeda")
    edge_net = train_semeda(masks, num_classes, **train_options)
    with atomic_path(path) as tmp:
        _as_model(edge_net).save(tmp)
    return edge_net
