"""Method "semeda": cross-entropy plus the SEMEDA perceptual loss of a frozen semantic-edge network g_φ (eq. 6).

g_φ is trained once per run on the training masks (or loaded) and cached in
the run's OUT folder, so every seed shares it (models.load_or_train_semeda).
"""

from pathlib import Path

import keras

from .. import losses
from ..layers import SemedaNet
from ..models import load_or_train_semeda
from ..schema import INT, NUMBER, Section, Setting, at_least, list_of, positive
from ..training import train_seed
from .base import Method


class Semeda(Method):
    name = "semeda"
    sections = {"semeda": Section({
        "lambdas": Setting((list,), list(losses.SEMEDA_LAMBDAS), list_of(NUMBER, at_least(0), len(SemedaNet.WIDTHS)),
                           "λ_1..λ_3 of eq. 6, one per SemedaNet layer"),
        "edge_epochs": Setting(INT, 10, at_least(1), "epochs of g_φ's own training"),
        "edge_batch_size": Setting(INT, 16, at_least(1), "batch size of g_φ's training"),
        "edge_learning_rate": Setting(NUMBER, 5e-4, positive, "Adam rate of g_φ's training (paper: 5e-4)"),
        "edge_seed": Setting(INT, 0, at_least(0), "seed of g_φ's training"),
    })}

    def loss(self, recipe, edge_net=None):
        return losses.SemedaLoss(edge_net, lambdas=recipe["semeda"]["lambdas"])

    def train(self, recipe, train, val, seed, seed_dir, verbose="auto", evaluate=None):
        """train_seed with the run's g_φ (OUT/semeda-DATASET-<C>classes.keras, trained first if absent) in the loss."""
        edge_net = semeda_edge_net(recipe, train, Path(seed_dir).parent, verbose)
        return train_seed(self, recipe, train, val, seed, seed_dir, verbose, loss=self.loss(recipe, edge_net))


def semeda_edge_net(recipe, train, cache_dir, verbose=0):
    """The frozen g_φ of a run: CACHE_DIR/semeda-DATASET-<C>classes.keras, trained on `train`'s masks if absent.

    The run's OUT folder is the cache, so every seed shares one g_φ trained with
    the run's [semeda] settings (part of OUT's config). A one-sigmoid segmenter
    gets a two-class g_φ (SemedaLoss feeds it [1 - p, p]). `verbose` is Keras's,
    for g_φ's own training: its progress bar shows before the segmenter's.
    """
    s = recipe["semeda"]
    keras.utils.set_random_seed(s["edge_seed"])
    return load_or_train_semeda(cache_dir, recipe["dataset"], max(2, train.proportions.shape[1]), train.masks,
                                epochs=s["edge_epochs"], batch_size=s["edge_batch_size"],
                                learning_rate=s["edge_learning_rate"], seed=s["edge_seed"], verbose=verbose)
