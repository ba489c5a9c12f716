"""Method "spss": the U-Net's softmax maps, globally average-pooled, trained to the given class proportions (paper eq. 1).

Beyond the paper, [train] offers a mask-free edge-aware smoothness prior in
the model, self-training rounds after the fit (the segmenter learns its own
confident predictions with the proportion loss kept on), and, off by default,
signals from the proportions beyond eq. 1 (kerasweak.proportion_losses): an
interval loss, proportion-matching pseudo-labels, absent/present class penalties,
entropy minimisation.
"""

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from .. import losses
from ..data import IGNORE_LABEL, make_dataset
from ..data.patching import check_patch_sides
from ..data.proportions import few_bags_warning
from ..data.pipeline import EpochCounter, predict_batches
from ..errors import KerasweakError
from ..metrics import class_maps
from ..models import build_spss, build_spss_plus, build_spss_signals, segmenter_of
from ..models.spss import with_validity_channel
from ..proportion_losses import ClassPresenceLoss, EntropyLoss, IntervalProportionLoss, PseudoLabelLoss
from ..schema import INT, NUMBER, Setting, at_least, fraction, one_of, positive, unit_interval
from ..training import fit_stage, make_optimizer, train_seed
from .base import Method

SIGNAL_SETTINGS = {
    "loss": Setting((str,), "mse", one_of(*losses.PROPORTION_FORMS, "interval"),
                    "proportion loss: mse (eq. 1), kl, mse+kl, or interval (0 within ± tolerance, a log-barrier outside)"),
    "tolerance": Setting(NUMBER, 0.05, fraction, "loss = interval: the half-width of the free interval"),
    "pseudo_label_weight": Setting(NUMBER, 0.0, at_least(0), "weight of the proportion-matching pseudo-label CE (0 = off)"),
    "pseudo_label_ramp_epochs": Setting(INT, 0, at_least(0), "epochs over which that weight rises linearly from 0"),
    "pseudo_label_temperature": Setting(NUMBER, 0.1, positive, "Sinkhorn temperature of the pseudo-labels (3+ classes)"),
    "absent_class_weight": Setting(NUMBER, 0.0, at_least(0), "weight of the absent-class penalty (0 = off)"),
    "absent_class_top_k": Setting(INT, 1, at_least(1), "its top-k mean probability (1 = the maximum)"),
    "present_class_weight": Setting(NUMBER, 0.0, at_least(0), "weight of the present-class penalty (0 = off)"),
    "present_class_top_k": Setting(INT, 16, at_least(1), "pixels each present class must be confident on"),
    "entropy_weight": Setting(NUMBER, 0.0, at_least(0), "weight of the class maps' mean pixel entropy (0 = off)"),
    "entropy_ramp_epochs": Setting(INT, 0, at_least(0), "epochs over which that weight rises linearly from 0"),
}  # the signals from proportions beyond eq. 1 (kerasweak.proportion_losses), each off by default


CLASS_MAP_WEIGHTS = ("pseudo_label_weight", "absent_class_weight", "present_class_weight", "entropy_weight")


def proportion_loss(recipe):
    """The proportion loss of the recipe's [train] loss: ProportionLoss of its form, or IntervalProportionLoss."""
    cfg = recipe["train"]
    if cfg["loss"] == "interval":
        return IntervalProportionLoss(tolerance=cfg["tolerance"])
    return losses.ProportionLoss(form=cfg["loss"])


def class_map_signals(recipe):
    """Whether [train] asks for the losses on the class maps: pseudo-labels, absent or present classes, entropy."""
    cfg = recipe["train"]
    return any(cfg[key] for key in CLASS_MAP_WEIGHTS)


def signal_losses(recipe):
    """{output: loss} of build_spss_signals's class-map outputs that [train] asks for."""
    cfg = recipe["train"]
    signals = {}
    if cfg["absent_class_weight"] or cfg["present_class_weight"]:
        signals["class_maps"] = ClassPresenceLoss(cfg["absent_class_weight"], cfg["present_class_weight"],
                                                  cfg["absent_class_top_k"], cfg["present_class_top_k"])
    return {**signals, **ramped_signal_losses(recipe)}


RAMPED_SIGNALS = {"pseudo_label_maps": "pseudo_label", "entropy_maps": "entropy"}  # output: its [train] key prefix


def ramped_signal_losses(recipe):
    """{output: loss} of the ramped class-map signals [train] asks for: pseudo-labels and entropy (spss and spss_plus)."""
    cfg = recipe["train"]
    signals = {}
    if cfg["pseudo_label_weight"]:
        signals["pseudo_label_maps"] = PseudoLabelLoss(temperature=cfg["pseudo_label_temperature"])
    if cfg["entropy_weight"]:
        signals["entropy_maps"] = EntropyLoss()
    return signals


def ramped_weights(recipe):
    """{output: [train] weight} of the ramped signals that are on."""
    cfg = recipe["train"]
    return {output: cfg[f"{key}_weight"] for output, key in RAMPED_SIGNALS.items() if cfg[f"{key}_weight"]}


def ramp_steps(recipe, steps_per_epoch):
    """build_spss_signals/build_spss_plus's pseudo_label_ramp_steps and entropy_ramp_steps (None: the signal is off)."""
    cfg = recipe["train"]
    return {f"{key}_ramp_steps": cfg[f"{key}_ramp_epochs"] * steps_per_epoch if cfg[f"{key}_weight"] else None
            for key in RAMPED_SIGNALS.values()}


def coarse_start(recipe, steps_per_epoch):
    """build_spss's `coarse` argument ({"factor", "steps"}) from [train] coarse_epochs, or None when it is 0."""
    cfg = recipe["train"]
    return {"factor": cfg["coarse_factor"], "steps": cfg["coarse_epochs"] * steps_per_epoch} if cfg["coarse_epochs"] else None


def smoothness_prior(recipe):
    """build_spss's `smoothness` argument ({"weight", "sigma"}) from [train] smoothness, or None when it is 0."""
    cfg = recipe["train"]
    return {"weight": cfg["smoothness"], "sigma": cfg["smoothness_sigma"]} if cfg["smoothness"] else None


class Spss(Method):
    """SPSS: the U-Net's class maps pooled into proportions, with the [train] options beyond eq. 1."""

    name = "spss"
    train_settings = {
        **SIGNAL_SETTINGS,
        "smoothness": Setting(NUMBER, 0.0, at_least(0), "weight of the edge-aware smoothness prior (0 = off)"),
        "smoothness_sigma": Setting(NUMBER, 15.0, positive, "its σ in 0-255 pixel units (layers.EdgeAwareSmoothness)"),
        "self_train_rounds": Setting(INT, 0, at_least(0), "self-training rounds after the SPSS fit (0 = off)"),
        "self_train_confidence": Setting(NUMBER, 0.9, unit_interval, "pseudo-mask threshold on the top class"),
        "self_train_epochs": Setting(INT, None, at_least(1), "epochs per round (default: [train] epochs)"),
        "coarse_epochs": Setting(INT, 0, at_least(0), "first epochs on images average-pooled by coarse_factor "
                                                      "(progressive resizing; 0 = off)"),
        "coarse_factor": Setting(INT, 2, one_of(2, 4), "the pooling factor of those epochs (patch sides a multiple of 16×it)"),
    }

    def check(self, recipe, where):
        """Mosaics keep proportion labels exact, so they are allowed here (and only here), but not with class-map signals."""
        if recipe["train"]["mosaic"] > 1 and class_map_signals(recipe):
            raise KerasweakError("[train] mosaic > 1 cannot go with pseudo_label_weight, absent_class_weight, "
                                 "present_class_weight or entropy_weight (mosaics take proportion targets only); "
                                 "set one of them off", where)
        factor = recipe["train"]["coarse_factor"]
        if recipe["train"]["coarse_epochs"]:
            check_patch_sides(recipe["data"]["patch_size"], f"[train] coarse_factor = {factor}",
                              "the U-Net halves a side 4 times after the pooling", where, multiple_of=16 * factor)

    def data_warnings(self, train):
        """SPSS learns from one proportion vector a patch: warn below the learning curve's floor (few_bags_warning)."""
        warning = few_bags_warning(len(train))
        return [warning] if warning else []

    def build(self, num_outputs, recipe, channels, steps_per_epoch=1):
        segmenter, smoothness = self.segmenter(num_outputs, recipe, channels), smoothness_prior(recipe)
        coarse = coarse_start(recipe, steps_per_epoch)
        if not class_map_signals(recipe):
            return build_spss(segmenter, smoothness=smoothness, coarse=coarse)
        cfg = recipe["train"]
        presence = bool(cfg["absent_class_weight"] or cfg["present_class_weight"])
        return build_spss_signals(segmenter, smoothness, presence=presence, coarse=coarse,
                                  **ramp_steps(recipe, steps_per_epoch))

    def targets(self, patches, recipe):
        """The proportions; with class-map signals, the target of every output."""
        if not class_map_signals(recipe):
            return patches.proportions
        return {output: patches.proportions for output in ("proportions", *signal_losses(recipe))}

    def loss(self, recipe):
        if not class_map_signals(recipe):
            return proportion_loss(recipe)
        return {"proportions": proportion_loss(recipe), **signal_losses(recipe)}

    def loss_weights(self, recipe):
        if not class_map_signals(recipe):
            return None
        return {"proportions": 1.0, **{output: 1.0 for output in signal_losses(recipe)}, **ramped_weights(recipe)}

    def train(self, recipe, train, val, seed, seed_dir, verbose="auto", evaluate=None):
        """The SPSS fit, then the self-training rounds, round r in seed_dir/self_train_r.

        With rounds, the extra metrics add `evaluate`'s test figures of the SPSS
        stage, prefixed "before_self_train_", and each round's epochs; seconds cover every stage.
        """
        if train.valid is not None:
            return train_seed(PaddedSpss(), recipe, padded_inputs(train, recipe), padded_inputs(val, recipe), seed,
                              seed_dir, verbose)
        model, seconds, metrics = train_seed(self, recipe, train, val, seed, seed_dir, verbose)
        rounds = recipe["train"]["self_train_rounds"]
        if rounds and evaluate:
            metrics.update({f"before_self_train_{key}": value for key, value in evaluate(model).items()})
        for round_number in range(1, rounds + 1):
            model, round_seconds, round_epochs = self_train_round(recipe, model, train, val, seed,
                                                                  Path(seed_dir) / f"self_train_{round_number}", verbose)
            seconds += round_seconds
            metrics[f"self_train_{round_number}_epochs"] = float(round_epochs)
        return model, seconds, metrics


class PaddedSpss(Spss):
    """SPSS on whole images scaled into zero-padded patches: the proportion pools the valid pixels only.

    The training inputs carry the validity as an extra channel (padded_inputs);
    the segmenter inside, which kerasweak exports, takes the image channels.
    """

    def build(self, num_outputs, recipe, channels, steps_per_epoch=1):
        return build_spss(self.segmenter(num_outputs, recipe, channels - 1), smoothness=smoothness_prior(recipe),
                          validity_channel=True, coarse=coarse_start(recipe, steps_per_epoch))


def padded_inputs(patches, recipe):
    """`patches` with the validity channel on their images (models.spss.with_validity_channel), for PaddedSpss.

    Mosaics, self-training and the class-map signals pool every pixel, so they are refused for such patches.
    """
    cfg = recipe["train"]
    for key, off in (("mosaic", 1), ("self_train_rounds", 0), *((weight, 0) for weight in CLASS_MAP_WEIGHTS)):
        if cfg[key] != off:
            raise KerasweakError(f"[train] {key} = {cfg[key]} pools padding into the proportions of whole images "
                                 f"scaled into patches (a folder without masks); set it to {off}", "recipe")
    return replace(patches, images=with_validity_channel(patches.images, patches.valid))


def pseudo_masks(probabilities, confidence, ignore_label=IGNORE_LABEL):
    """(N, H, W, C) class probabilities -> (N, H, W) uint8 labels: the argmax where its probability >= confidence, else ignore_label.

    A one-channel sigmoid map p counts as the two-class map [1 − p, p].
    """
    p = class_maps(probabilities)
    return np.where(p.max(axis=-1) >= confidence, p.argmax(axis=-1), ignore_label).astype(np.uint8)


def predicted_pseudo_masks(segmenter, images, confidence, batch_size):
    """pseudo_masks of the segmenter's predictions on `images`, batch by batch (all class maps at once would not fit in memory)."""
    return np.concatenate([pseudo_masks(keras.ops.convert_to_numpy(keras.ops.cast(segmenter(batch, training=False), "float32")),
                                        confidence) for batch in predict_batches(images, batch_size)])


def self_train_round(recipe, model, train, val, seed, stage_dir, verbose="auto"):
    """One self-training round: the segmenter learns its own confident predictions, with the proportion loss kept on.

    The pseudo-masks are `model`'s predictions on the training patches where the
    top class reaches [train] self_train_confidence (other pixels ignored). A
    two-output model around the same segmenter (so it starts from the current
    weights, smoothness prior included) trains with ProportionLoss on the
    proportions plus PixelCrossEntropy on the pseudo-masks, by fit_stage in
    `stage_dir` (so it resumes). Validation scores proportions only, as in the
    SPSS stage (its pseudo-masks are all ignored). No augmentation: the transforms
    keep proportions, not masks. Returns (two-output model, seconds, epochs run).
    """
    cfg = recipe["train"]
    epochs = cfg["self_train_epochs"] or cfg["epochs"]
    segmenter = segmenter_of(model)
    masks = predicted_pseudo_masks(segmenter, train.images, cfg["self_train_confidence"], cfg["batch_size"])
    student = build_spss_plus(segmenter, smoothness=smoothness_prior(recipe), name="spss_self_train")
    student.compile(optimizer=make_optimizer(recipe, len(train), epochs),
                    loss={"proportions": proportion_loss(recipe), "class_maps": losses.PixelCrossEntropy()})
    counter = EpochCounter()
    train_data = make_dataset(train.images, {"proportions": train.proportions, "class_maps": masks}, cfg["batch_size"],
                              shuffle=True, seed=seed, epoch=counter.epoch)
    unlabelled = np.full(val.images.shape[:3], IGNORE_LABEL, np.uint8)
    val_data = make_dataset(val.images, {"proportions": val.proportions, "class_maps": unlabelled}, cfg["batch_size"])
    seconds, epochs_run = fit_stage(student, train_data, val_data, stage_dir, epochs, cfg["patience"],
                                    verbose=verbose, callbacks=[counter], validation_every=cfg["validation_every"])
    return student, seconds, epochs_run
