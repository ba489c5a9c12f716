"""Training one seed of a recipe: the shared `fit` protocol, SPSS self-training rounds, and the two-stage object-size protocol.

Every stage is a plain `model.fit` with the same callbacks: resume from the last
completed epoch (BackupAndRestore), keep the best weights by the monitored
validation figure, stop early, and log each epoch (CSV with `epoch_seconds`, TensorBoard).
Training data is shuffled by (seed, epoch) (`EpochCounter`), so a resumed run
sees the same batches as an uninterrupted one; random augmentations are not replayed.
"""

import csv
import math
import time
from pathlib import Path

import keras
import numpy as np

from . import losses
from .data import IGNORE_LABEL, make_dataset
from .data.pipeline import EpochCounter, predict_batches
from .data.augment import AUGMENTATIONS
from .errors import KerasweakError
from .io import write_json
from .methods import get_method, proportion_loss, size_settings, size_targets, smoothness_prior, spss_settings
from .metrics import class_maps
from .models import SizeSupervisedSegmenter, build_spss_plus, build_unet, segmenter_of


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` to the logs (hence to the CSV log) of each epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that carries on from the `history` of the monitored value a resumed stage has already logged.

    Keras's EarlyStopping starts counting afresh at every `fit`, so a run resumed
    during its patience would train up to `patience` epochs longer than an
    uninterrupted one. Replaying the logged values restores its best value and
    the epochs waited since, so the resumed run stops where the uninterrupted one would.
    """

    def __init__(self, history=(), **kwargs):
        super().__init__(**kwargs)
        self.history = [float(value) for value in history]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        better = (lambda a, b: a > b) if self.mode == "max" else (lambda a, b: a < b)
        for value in self.history:
            self.wait += 1
            if self.best is None or better(value, self.best):
                self.best, self.wait = value, 0


def csv_column(path, column):
    """The float values of one column of a CSV log; [] if the file does not exist yet."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [float(row[column]) for row in csv.DictReader(handle) if row.get(column)]


def fit_stage(model, train_data, val_data, stage_dir, epochs, patience, monitor="val_loss", mode="min", verbose="auto",
              callbacks=()):
    """`model.fit` with the protocol callbacks (and `callbacks`, e.g. the data's EpochCounter); restores the best weights.

    A resumed stage keeps its best-weights threshold and EarlyStopping's count from its log.
    Returns (train seconds, epochs run). A finished stage (stage_dir/done.json)
    is not trained again: its best weights are loaded.
    """
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    log_path, best_path, done_path = stage_dir / "log.csv", stage_dir / "best.weights.h5", stage_dir / "done.json"
    backup_path = stage_dir / "backup"
    if not done_path.exists():
        if log_path.exists() and not backup_path.exists():
            _restart_stage(log_path, best_path)
        history = csv_column(log_path, monitor)
        previous_best = (min if mode == "min" else max)(history, default=None)
        callbacks = [
            *callbacks,
            EpochTimer(),
            keras.callbacks.ModelCheckpoint(str(best_path), monitor=monitor, mode=mode, save_best_only=True,
                                            save_weights_only=True, initial_value_threshold=previous_best),
            ResumedEarlyStopping(history, monitor=monitor, mode=mode, patience=patience),
            keras.callbacks.CSVLogger(str(log_path), append=True),
            keras.callbacks.TensorBoard(str(stage_dir / "tensorboard"), write_graph=False, profile_batch=0),
            # last, so an epoch counts as completed only once its checkpoint and log row are written
            keras.callbacks.BackupAndRestore(str(backup_path)),
        ]
        model.fit(train_data, validation_data=val_data, epochs=epochs, callbacks=callbacks, verbose=verbose)
        write_json(done_path, {"monitor": monitor, "epochs": len(csv_column(log_path, "epoch_seconds"))})
    if best_path.exists():
        model.load_weights(str(best_path))
    seconds = csv_column(log_path, "epoch_seconds")
    return sum(seconds), len(seconds)


def _restart_stage(log_path, best_path):
    """Set aside the log of an unfinished stage whose backup is gone (e.g. a folder copied without it), so it trains anew.

    Kept, its rows would count twice in the epochs and seconds, and its best
    val_loss would stop the new run from saving weights better than the lost ones.
    """
    stale = log_path.with_name("log.interrupted.csv")
    log_path.replace(stale)
    best_path.unlink(missing_ok=True)
    print(f"{log_path.parent}: unfinished, and its backup/ is gone: training it from the start (its old log is {stale})")


def _set_precision(cfg):
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if cfg.get("mixed_precision") else "float32")


def train_augmentation(recipe):
    """([train] augment, [train] mosaic) checked: augment keeps every method's labels exact, mosaics only proportions (method spss)."""
    cfg = recipe["train"]
    augment, mosaic = list(cfg.get("augment", [])), cfg.get("mosaic", 1)
    unknown = sorted(set(augment) - set(AUGMENTATIONS))
    if unknown:
        raise KerasweakError(f"[train] augment: unknown {', '.join(unknown)}; known: {', '.join(AUGMENTATIONS)}", recipe["name"])
    if not (isinstance(mosaic, int) and mosaic >= 1):
        raise KerasweakError(f"[train] mosaic must be an integer >= 1, got {mosaic!r}", recipe["name"])
    if mosaic > 1 and recipe["method"] != "spss":
        raise KerasweakError(f"[train] mosaic keeps proportion labels exact, so it needs method spss, "
                             f"not {recipe['method']}", recipe["name"])
    return augment, mosaic


LR_SCHEDULES = ("constant", "cosine")


def adam(recipe, num_patches, epochs, mosaic=1):
    """Adam at [train] learning_rate; with [train] lr_schedule = "cosine", CosineDecay to 0 over the planned steps.

    The planned steps are `epochs` × the batches in an epoch of `num_patches`
    patches (k×k mosaics put k² patches in one input, see make_dataset);
    EarlyStopping may end training before the rate reaches 0.
    """
    cfg = recipe["train"]
    schedule = cfg.get("lr_schedule", "constant")
    if schedule not in LR_SCHEDULES:
        raise KerasweakError(f"[train] lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}", recipe["name"])
    if schedule == "constant":
        return keras.optimizers.Adam(cfg["learning_rate"])
    tiles = mosaic * mosaic
    steps = epochs * math.ceil(num_patches // tiles / max(1, cfg["batch_size"] // tiles))
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(cfg["learning_rate"], decay_steps=max(1, steps)))


def train_seed(recipe, train, val, seed, seed_dir, verbose="auto", evaluate=None):
    """Train one seed of a single-stage recipe; return (trained model, training wall seconds, {"epochs": run})."""
    keras.utils.set_random_seed(seed)
    cfg = recipe["train"]
    _set_precision(cfg)
    method = get_method(recipe["method"])
    num_outputs = train.proportions.shape[1]  # 1 for binary data with one sigmoid output
    model = method.build(num_outputs, {**recipe.get("model", {}), "channels": train.images.shape[-1]})
    augment, mosaic = train_augmentation(recipe)
    model.compile(optimizer=adam(recipe, len(train), cfg["epochs"], mosaic), loss=method.loss(recipe),
                  loss_weights=method.loss_weights(recipe))
    batch = cfg["batch_size"]
    counter = EpochCounter()
    train_data = make_dataset(train.images, method.targets(train, recipe), batch, shuffle=True, seed=seed,
                              augment=augment, mosaic=mosaic, epoch=counter.epoch)
    val_data = make_dataset(val.images, method.targets(val, recipe), batch)
    seconds, epochs_run = fit_stage(model, train_data, val_data, seed_dir, cfg["epochs"], cfg["patience"], verbose=verbose,
                                    callbacks=[counter])
    return model, seconds, {"epochs": float(epochs_run)}


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
    cfg, settings = recipe["train"], spss_settings(recipe)
    segmenter = segmenter_of(model)
    masks = predicted_pseudo_masks(segmenter, train.images, settings["self_train_confidence"], cfg["batch_size"])
    student = build_spss_plus(segmenter, smoothness=smoothness_prior(recipe), name="spss_self_train")
    student.compile(optimizer=adam(recipe, len(train), settings["self_train_epochs"]),
                    loss={"proportions": proportion_loss(recipe), "class_maps": losses.PixelCrossEntropy()})
    counter = EpochCounter()
    train_data = make_dataset(train.images, {"proportions": train.proportions, "class_maps": masks}, cfg["batch_size"],
                              shuffle=True, seed=seed, epoch=counter.epoch)
    unlabelled = np.full(val.images.shape[:3], IGNORE_LABEL, np.uint8)
    val_data = make_dataset(val.images, {"proportions": val.proportions, "class_maps": unlabelled}, cfg["batch_size"])
    seconds, epochs_run = fit_stage(student, train_data, val_data, stage_dir, settings["self_train_epochs"], cfg["patience"],
                                    verbose=verbose, callbacks=[counter])
    return student, seconds, epochs_run


def train_spss_seed(recipe, train, val, seed, seed_dir, verbose="auto", evaluate=None):
    """Method spss for one seed: train_seed with the [train] smoothness prior in the model, then the self-training rounds.

    Round r trains in seed_dir/self_train_r (self_train_round). With rounds, the
    extra metrics add `evaluate`'s test figures of the SPSS stage, prefixed
    "before_self_train_", and each round's epochs; seconds cover every stage.
    """
    rounds = spss_settings(recipe)["self_train_rounds"]
    recipe = {**recipe, "model": {**recipe.get("model", {}), "smoothness": smoothness_prior(recipe)}}
    model, seconds, metrics = train_seed(recipe, train, val, seed, seed_dir, verbose, evaluate)
    if rounds and evaluate:
        metrics.update({f"before_self_train_{key}": value for key, value in evaluate(model).items()})
    for round_number in range(1, rounds + 1):
        model, round_seconds, round_epochs = self_train_round(recipe, model, train, val, seed,
                                                              Path(seed_dir) / f"self_train_{round_number}", verbose)
        seconds += round_seconds
        metrics[f"self_train_{round_number}_epochs"] = float(round_epochs)
    return model, seconds, metrics


def train_size_seed(recipe, train, val, seed, seed_dir, verbose="auto", evaluate=None):
    """Object-size protocol (Baručić and Kybic, section 4.2) for one seed.

    1. Pre-train the U-Net with BCE on m = `pixel_annotated` training images
       (D_f, drawn with this seed), with random flips, until val_loss stops improving.
    2. Fine-tune a SizeSupervisedSegmenter on all training images (D_f keeps its
       masks, the rest D_w only their sizes), until val_size_error stops improving.
    Returns (model, seconds, extra metrics): `evaluate(model)`'s test figures after
    pre-training, prefixed "pretrain_", and each stage's epochs and time.
    """
    keras.utils.set_random_seed(seed)
    cfg, sizes = recipe["train"], size_settings(recipe)
    _set_precision(cfg)
    seed_dir = Path(seed_dir)
    labelled = np.sort(np.random.default_rng(seed).permutation(len(train))[:min(sizes["pixel_annotated"], len(train))])
    backbone = build_unet(1, base_filters=recipe.get("model", {}).get("base_filters", 16), channels=train.images.shape[-1])
    backbone.compile(optimizer=keras.optimizers.Adam(cfg["learning_rate"]), loss=keras.losses.BinaryCrossentropy())
    pre = train.subset(labelled)
    counter = EpochCounter()
    pre_data = make_dataset(pre.images, pre.masks[..., None].astype("float32"), cfg["batch_size"], shuffle=True, seed=seed,
                            augment=["flip_with_mask"] if sizes["augment"] else (), epoch=counter.epoch)
    val_masks = make_dataset(val.images, val.masks[..., None].astype("float32"), cfg["batch_size"])
    pre_seconds, pre_epochs = fit_stage(backbone, pre_data, val_masks, seed_dir / "pretrain", cfg["epochs"],
                                        cfg["patience"], verbose=verbose, callbacks=[counter])
    metrics = {f"pretrain_{key}": value for key, value in (evaluate(backbone) if evaluate else {}).items()}

    model = SizeSupervisedSegmenter(backbone, num_samples=sizes["num_samples"], seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(sizes["finetune_learning_rate"]))
    fine_counter = EpochCounter()
    fine_data = make_dataset(train.images, size_targets(train, labelled), cfg["batch_size"], shuffle=True, seed=seed,
                             epoch=fine_counter.epoch)
    val_data = make_dataset(val.images, size_targets(val, np.arange(len(val)), labelled_size_weight=1.0), cfg["batch_size"])
    fine_seconds, fine_epochs = fit_stage(model, fine_data, val_data, seed_dir / "finetune", sizes["finetune_epochs"],
                                          sizes["finetune_patience"], monitor="val_size_error", verbose=verbose,
                                          callbacks=[fine_counter])
    metrics.update(epochs=float(pre_epochs + fine_epochs), pretrain_seconds=pre_seconds, pretrain_epochs=float(pre_epochs),
                   finetune_epochs=float(fine_epochs), finetune_epoch_seconds=fine_seconds / max(fine_epochs, 1), pixel_annotated=float(len(labelled)))
    return model, pre_seconds + fine_seconds, metrics
