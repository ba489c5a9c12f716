"""Nothing lost, same seed same result: a run SIGKILLed mid-epoch resumes to the uninterrupted run's metrics,
and `--deterministic` runs repeat exactly. Through the installed CLI, in subprocesses."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from helpers import ENTRY_POINT, kerasweak, write_fake_dubai, write_recipe

pytestmark = pytest.mark.slow  # every test trains the tiny recipe for 8 epochs through the CLI

EPOCHS = 8
RESUME_TOLERANCE = 1e-6  # absolute, on every test figure; measured difference: 0 (bit-identical)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(recipe, data, seed_0 metrics) of one uninterrupted deterministic run of the tiny SPSS recipe.

    Batch 1 and 8 epochs, so an epoch lasts long enough to be killed in.
    """
    root = tmp_path_factory.mktemp("resume")
    recipe = write_recipe(root / "tiny-resume.toml", method="spss",
                          train={"epochs": EPOCHS, "batch_size": 1, "patience": EPOCHS})
    data = write_fake_dubai(root / "data")
    metrics = run(recipe, data, root / "uninterrupted", root)
    assert (root / "uninterrupted" / "seed_0" / "log.csv").read_text().count("\n") == EPOCHS + 1
    return recipe, data, metrics


def run(recipe, data, out, cwd):
    result = kerasweak("recipe", recipe, "--data", data, "--out", out, "--deterministic", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "seed_0" / "metrics.json").read_text())


def completed_epochs(seed_dir):
    """The epochs the newest backup snapshot holds (seed_K/backup/epoch_E.weights.h5; 0 before the first)."""
    from kerasweak.backup import snapshots

    found = snapshots(seed_dir / "backup")
    return found[0][0] if found else 0


def kill_mid_epoch(process, seed_dir, epoch):
    """SIGKILL `process` about half-way through `epoch` (0-based), timed by how long the epoch before took."""
    started, deadline = {}, time.monotonic() + 300
    while (completed_epochs(seed_dir) or 0) < epoch:
        assert process.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        started.setdefault(completed_epochs(seed_dir), time.monotonic())
        time.sleep(0.005)
    previous = started.get(epoch - 1)
    time.sleep((time.monotonic() - previous) / 2 if previous else 0)
    process.send_signal(signal.SIGKILL)


def figures(metrics):
    """The test figures of metrics.json (not timings)."""
    return {key: value for key, value in metrics.items() if key not in ("train_seconds", "dtype_policy")}


def assert_close(resumed, reference, tolerance):
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        if isinstance(value, dict):
            assert_close(resumed[key], value, tolerance)
        else:
            np.testing.assert_allclose(np.asarray(resumed[key], float), np.asarray(value, float), rtol=0, atol=tolerance,
                                       err_msg=key)


def test_deterministic_runs_give_identical_metrics(tmp_path, reference):
    recipe, data, metrics = reference
    assert figures(run(recipe, data, tmp_path / "again", tmp_path)) == figures(metrics)


def test_a_run_killed_mid_epoch_resumes_and_ends_as_the_uninterrupted_run(tmp_path, reference):
    recipe, data, metrics = reference
    out = tmp_path / "killed"
    seed_dir = out / "seed_0"
    command = [str(ENTRY_POINT), "recipe", str(recipe), "--data", str(data), "--out", str(out), "--deterministic"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        kill_mid_epoch(process, seed_dir, epoch=2)
    finally:
        process.kill()
        process.wait()
    killed_at = completed_epochs(seed_dir)
    assert 2 <= killed_at < EPOCHS and not (seed_dir / "metrics.json").exists()

    resumed = run(recipe, data, out, tmp_path)
    epochs_logged = [int(line.split(",")[0]) for line in (seed_dir / "log.csv").read_text().splitlines()[1:]]
    assert epochs_logged == list(range(EPOCHS))  # resumed from the last completed epoch, not from the start
    assert_close(figures(resumed), figures(metrics), RESUME_TOLERANCE)


def test_an_unfinished_run_whose_backup_is_gone_trains_anew_and_ends_as_the_uninterrupted_run(tmp_path, reference):
    """As when a results folder is copied without its backup/ (it is not kept in git): the old log is set aside."""
    recipe, data, metrics = reference
    seed_dir = tmp_path / "copied" / "seed_0"
    seed_dir.mkdir(parents=True)
    stale_rows = "epoch,epoch_seconds,loss,val_loss\n0,1.0,0.5,1e-9\n1,1.0,0.4,1e-9\n"
    (seed_dir / "log.csv").write_text(stale_rows)

    resumed = run(recipe, data, tmp_path / "copied", tmp_path)
    epochs_logged = [int(line.split(",")[0]) for line in (seed_dir / "log.csv").read_text().splitlines()[1:]]
    assert epochs_logged == list(range(EPOCHS))
    assert (seed_dir / "log.interrupted.csv").read_text() == stale_rows
    assert_close(figures(resumed), figures(metrics), RESUME_TOLERANCE)
