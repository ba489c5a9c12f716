"""The shared training protocol: `fit_stage` (resume, best weights, early stopping, logs), the optimiser, one-fit `train_seed`.

Every stage is a plain `model.fit` with the same callbacks: resume from the last
completed epoch (kerasweak.backup's kill-safe snapshots), keep the best weights by the monitored
validation figure, stop early, and log each epoch (CSV with `epoch_seconds`, TensorBoard with a few predicted masks).
With [train] validation_every = k the stage validates on its first epoch, every k-th after it and its
last (`validated_epochs`); the other epochs' validation cells in log.csv stay empty, and EarlyStopping's
patience counts validations.
Training data is shuffled by (seed, epoch) (`EpochCounter`), so a resumed run
sees the same batches as an uninterrupted one; random augmentations are not replayed.
"""

import math
import shutil
import time
from pathlib import Path

import keras

from .backup import Snapshots, resume
from .data import make_dataset
from .data.pipeline import EpochCounter
from .errors import check_termination
from .io import csv_column, csv_header, naming_full_disk, write_json
from .mask_previews import MaskPreviews
from .precision import set_precision
from .progress import RunEta
from .schedules import learning_rate as scheduled_rate


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` to the logs (hence to the CSV log) of each epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


class TerminationCheck(keras.callbacks.Callback):
    """Stops at the next batch once SIGTERM arrived (kerasweak.errors.check_termination)."""

    def on_train_batch_end(self, batch, logs=None):
        check_termination()

    def on_test_batch_end(self, batch, logs=None):
        check_termination()


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
        self.best, self.wait = replay_patience(self.history, self.mode)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor in (logs or {}):  # an epoch without validation neither counts nor warns
            super().on_epoch_end(epoch, logs)


class CsvLog(keras.callbacks.CSVLogger):
    """CSVLogger whose columns stay those of the log's header, with empty cells for an epoch's missing values.

    Keras's own picks its columns from the first epoch it logs, so a resumed stage
    whose first epoch is not validated would write rows that do not match the
    header, and it writes "NA" for missing values, which `csv_column` could not read.
    """

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None and not self.append_header:
            self.keys = csv_header(self.filename)[1:] or None
        super().on_epoch_end(epoch, {**dict.fromkeys(self.keys or (), ""), **(logs or {})})


def replay_patience(history, mode):
    """(best value, epochs waited since it) of a monitored `history`, counted as Keras's EarlyStopping counts."""
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    best, wait = None, 0
    for value in history:
        wait += 1
        if best is None or better(value, best):
            best, wait = value, 0
    return best, wait


def patience_exhausted(history, patience, mode):
    """Whether EarlyStopping stopped after the last logged epoch (a stage killed before it wrote done.json)."""
    return len(history) > 1 and replay_patience(history, mode)[1] >= patience


def validated_epochs(epochs, every):
    """The epochs (counted from 1) a stage of `epochs` validates on: the first, every `every`-th after it, and the last."""
    return sorted({*range(1, epochs + 1, every), epochs})


def fit_stage(model, train_data, val_data, stage_dir, epochs, patience, monitor="val_loss", mode="min", verbose="auto",
              callbacks=(), preview=None, validation_every=1):
    """`model.fit` with the protocol callbacks (and `callbacks`, e.g. the data's EpochCounter); restores the best weights.

    A resumed stage (kerasweak.backup) keeps its best-weights threshold and
    EarlyStopping's count from its log. Returns (train seconds, epochs run). A
    finished stage (stage_dir/done.json) is not trained again: its best weights are loaded.
    `preview`, a PatchSet (the validation patches), puts a few of its patches and
    their predicted masks in TensorBoard each epoch (mask_previews.MaskPreviews, run "masks").
    `validation_every` = k validates only on `validated_epochs`; `patience` then counts validations.
    """
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    log_path, best_path, done_path = stage_dir / "log.csv", stage_dir / "best.weights.h5", stage_dir / "done.json"
    backup_dir = stage_dir / "backup"
    if not done_path.exists():
        initial_epoch = resume(model, backup_dir, log_path)
        if initial_epoch == 0 and log_path.exists():
            _restart_stage(log_path, best_path)
        history = csv_column(log_path, monitor)
        if initial_epoch < epochs and not patience_exhausted(history, patience, mode):
            validated = validated_epochs(epochs, validation_every)
            previous_best = (min if mode == "min" else max)(history, default=None)
            callbacks = [
                TerminationCheck(),
                *callbacks,
                EpochTimer(),
                RunEta(epochs, validated=validated),
                ResumedEarlyStopping(history, monitor=monitor, mode=mode, patience=patience),
                CsvLog(str(log_path), append=True),
                keras.callbacks.TensorBoard(str(stage_dir / "tensorboard"), write_graph=False, profile_batch=0),
                *([MaskPreviews(stage_dir / "tensorboard" / "masks", preview)] if preview is not None else []),
                # last, so an epoch counts as completed only once its log row is written; saves the best weights too
                Snapshots(backup_dir, best_path, monitor, mode, best=previous_best),
            ]
            # shuffle=False: the datasets shuffle themselves (by seed and epoch); Keras would warn it ignores shuffle=True
            with naming_full_disk(stage_dir):
                model.fit(train_data, validation_data=val_data, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                          validation_freq=validated, callbacks=callbacks, verbose=verbose)
        write_json(done_path, {"monitor": monitor, "epochs": len(csv_column(log_path, "epoch_seconds"))})
    shutil.rmtree(backup_dir, ignore_errors=True)
    if best_path.exists():
        model.load_weights(str(best_path))
    seconds = csv_column(log_path, "epoch_seconds")
    return sum(seconds), len(seconds)


def _restart_stage(log_path, best_path):
    """Set aside the log of an unfinished stage with no backup to resume from (e.g. a folder copied without it).

    Kept, its rows would count twice in the epochs and seconds, and its best
    val_loss would stop the new run from saving weights better than the lost ones.
    A log without rows (killed in the first epoch) just goes.
    """
    best_path.unlink(missing_ok=True)
    if not csv_column(log_path, "epoch_seconds"):
        log_path.unlink()
        return
    stale = log_path.with_name("log.interrupted.csv")
    log_path.replace(stale)
    print(f"{log_path.parent}: unfinished, with no backup to resume from: training it from the start (its old log is {stale})")


def steps_per_epoch(recipe, num_patches, mosaic=1):
    """Training steps in an epoch of `num_patches` patches ([train] batch_size; k×k mosaics put k² patches in one input)."""
    tiles = mosaic * mosaic
    return math.ceil(num_patches // tiles / max(1, recipe["train"]["batch_size"] // tiles))


def make_optimizer(recipe, num_patches, epochs, mosaic=1, learning_rate=None):
    """The [train] optimizer (adam, adamw, or sgd with momentum) at `learning_rate` (default [train] learning_rate).

    [train] lr_schedule other than "constant" varies the rate over the planned
    steps (kerasweak.schedules): `epochs` × the batches in an epoch of `num_patches`
    patches (k×k mosaics put k² patches in one input, see make_dataset);
    EarlyStopping may end training before the schedule does.
    """
    cfg = recipe["train"]
    rate = scheduled_rate(cfg["lr_schedule"], cfg["learning_rate"] if learning_rate is None else learning_rate,
                          steps_per_epoch(recipe, num_patches, mosaic), epochs, cfg["warmup_epochs"])
    if cfg["optimizer"] == "adamw":
        return keras.optimizers.AdamW(rate)
    if cfg["optimizer"] == "sgd":
        return keras.optimizers.SGD(rate, momentum=cfg["momentum"])
    return keras.optimizers.Adam(rate)


def train_seed(method, recipe, train, val, seed, seed_dir, verbose="auto", loss=None):
    """One fit of `method`'s model, targets and loss (or `loss`) for one seed: (model, training seconds, {"epochs": run})."""
    keras.utils.set_random_seed(seed)
    cfg = recipe["train"]
    set_precision(recipe)
    num_outputs = train.proportions.shape[1]  # 1 for binary data with one sigmoid output
    model = method.build(num_outputs, recipe, train.images.shape[-1], steps_per_epoch(recipe, len(train), cfg["mosaic"]))
    model.compile(optimizer=make_optimizer(recipe, len(train), cfg["epochs"], cfg["mosaic"]),
                  loss=loss or method.loss(recipe), loss_weights=method.loss_weights(recipe))
    counter = EpochCounter()
    train_data = make_dataset(train.images, method.targets(train, recipe), cfg["batch_size"], shuffle=True, seed=seed,
                              augment=cfg["augment"], mosaic=cfg["mosaic"], epoch=counter.epoch)
    val_data = make_dataset(val.images, method.targets(val, recipe), cfg["batch_size"])
    seconds, epochs_run = fit_stage(model, train_data, val_data, seed_dir, cfg["epochs"], cfg["patience"], verbose=verbose,
                                    callbacks=[counter], preview=val, validation_every=cfg["validation_every"])
    return model, seconds, {"epochs": float(epochs_run)}
