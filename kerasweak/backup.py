"""Kill-safe training backups: each epoch end writes a whole new snapshot under a temporary name, then renames it.

Keras's BackupAndRestore rewrites backup/latest.weights.h5 in place, so a kill
or a full disk during that write left a file no rerun could load. Here the state
after E epochs (weights and optimizer) is backup/epoch_E.weights.h5, renamed into
place once whole, and the snapshot before it is kept until the next one is whole.
A rerun resumes from the newest snapshot that loads, cuts the stage's log.csv back
to the epochs that snapshot holds (rows of a lost epoch would count twice), and
with none left trains the stage from the start.
"""

import json
import math
import re
from pathlib import Path

import keras
import numpy as np

from .io import atomic_path, check_free_space, write_text

SNAPSHOT = re.compile(r"^epoch_(\d+)\.weights\.h5$")
KEPT = 2  # the newest snapshot and the one before it
LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError)


def snapshots(backup_dir):
    """[(epochs done, path)] of the snapshots in `backup_dir`, newest first.

    A backup written by Keras's BackupAndRestore (before kerasweak wrote its own:
    latest.weights.h5 and training_metadata.json) counts as one snapshot, so a run
    interrupted under an older kerasweak still resumes.
    """
    backup_dir = Path(backup_dir)
    found = [(int(m.group(1)), p) for p in backup_dir.glob("epoch_*.weights.h5") if (m := SNAPSHOT.match(p.name))]
    try:
        found.append((json.loads((backup_dir / "training_metadata.json").read_text())["epoch"],
                      backup_dir / "latest.weights.h5"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return sorted(found, key=lambda item: item[0], reverse=True)


class Snapshots(keras.callbacks.Callback):
    """At each epoch end, save the best weights if the monitored figure improved, then snapshot the model and optimizer.

    Both files are written whole under a temporary name, then renamed (io.atomic_path).
    Last in the callback list, so a snapshot for epoch E means everything of epoch E
    (log row included) is written. `best` is the threshold a resumed stage's log sets.
    """

    def __init__(self, backup_dir, best_path, monitor, mode, best=None):
        super().__init__()
        self.backup_dir, self.best_path, self.monitor, self.mode, self.best = Path(backup_dir), Path(best_path), monitor, mode, best

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is not None and (self.best is None or (current > self.best if self.mode == "max" else current < self.best)):
            self.best = float(current)
            save_weights(self.model, self.best_path)
        save_weights(self.model, self.backup_dir / f"epoch_{epoch + 1}.weights.h5")
        for _, older in snapshots(self.backup_dir)[KEPT:]:
            older.unlink(missing_ok=True)


def save_weights(model, path):
    """model.save_weights to `path` atomically, after checking there is room (h5py crashes the process on a full disk)."""
    variables = [*model.variables, *(model.optimizer.variables if model.optimizer is not None else [])]
    size = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_free_space(path, size + 4096 * len(variables) + 2**18)  # h5 adds about 1 KiB a variable
    with atomic_path(path) as tmp:
        model.save_weights(str(tmp))


def resume(model, backup_dir, log_path, echo=print):
    """Load the newest loadable snapshot into `model` and cut log.csv back to it; return its epochs done (0: start).

    An unloadable snapshot (damaged on disk) is named and skipped for the one
    before it; with none loadable the model keeps its initial weights and the stage
    trains from the start.
    """
    found = snapshots(backup_dir)
    if not found:
        return 0
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # so the snapshot's optimizer state has variables to fill
    variables = [*model.variables, *(model.optimizer.variables if model.optimizer is not None else [])]
    initial = [variable.numpy() for variable in variables]
    for epochs, path in found:
        try:
            model.load_weights(str(path))
        except LOAD_ERRORS as err:
            echo(f"{path}: cannot be loaded ({err.__class__.__name__}); trying the backup before it")
            continue
        keep_log_rows(log_path, epochs)
        echo(f"{stage_label(Path(backup_dir).parent)}: resuming from epoch {epochs + 1} ({epochs} done)")
        return epochs
    for variable, value in zip(variables, initial):
        variable.assign(value)  # a snapshot that failed half-way may have filled some
    return 0


def keep_log_rows(log_path, rows):
    """Cut a stage's CSV log to its header and first `rows` epochs (also dropping a row cut short by a kill)."""
    log_path = Path(log_path)
    if not log_path.exists():
        return
    lines = log_path.read_text().splitlines(keepends=True)
    if len(lines) > rows + 1 or (lines and not lines[-1].endswith("\n")):
        write_text(log_path, "".join(line for line in lines[:rows + 1] if line.endswith("\n")))


def stage_label(stage_dir):
    """How a resume line names a stage: "seed K" for OUT/seed_K, "seed K, STAGE" for OUT/seed_K/STAGE, else its path."""
    parts = Path(stage_dir).parts
    seeds = [i for i, part in enumerate(parts) if re.fullmatch(r"seed_\d+", part)]
    if not seeds:
        return str(stage_dir)
    stage = "/".join(parts[seeds[-1] + 1:])
    return f"seed {parts[seeds[-1]][5:]}" + (f", {stage}" if stage else "")
