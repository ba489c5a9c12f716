"""Faults a run survives (docs/bad-input.md, "Faults"), through the installed CLI against an uninterrupted run.

A kill, a torn backup, a full disk (a write wrapper everywhere; a real 4 MB tmpfs
where this machine lets a test mount one), SIGTERM, stale temporary folders,
another run in --out, the test patches of a --max-samples model, and Aerial Dubai
images of every extension, a copied tile folder and EXIF orientation. Every rerun
must end with the uninterrupted run's figures, bit for bit (--deterministic).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import ENTRY_POINT, kerasweak, write_fake_dubai, write_recipe

pytestmark = pytest.mark.slow
CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
DRIVER = Path(__file__).with_name("kill_driver.py")
EPOCHS = 4
TERMINATED = "terminated; rerun the same command to resume"
FAULT_ROWS = ("killed-run-resumes", "torn-backup", "both-backups-torn", "full-disk", "full-disk-tmpfs", "sigterm",
              "stale-temporary-folders", "shuffle-warning", "proportions-out-holds-another-run",
              "proportions-rerun-with-another-csv", "evaluate-max-samples-model", "image-extensions", "tile-copy",
              "exif-orientation")


class Reference:
    """The tiny deterministic SPSS run every fault is compared with: recipe, data, its folder and CLI result."""

    def __init__(self, root):
        self.root = root
        self.recipe = write_recipe(root / "tiny-faults.toml", method="spss", train={"epochs": EPOCHS, "patience": EPOCHS})
        self.data = write_fake_dubai(root / "data")
        self.out = root / "reference"
        self.result = self.run(self.out)
        self.scores = scores(self.out)

    def args(self, out):
        return ["recipe", self.recipe, "--data", self.data, "--out", out, "--deterministic"]

    def run(self, out):
        result = kerasweak(*self.args(out), cwd=self.root)
        assert result.returncode == 0, result.stderr
        return result

    def drive(self, out, when):
        """The run under tests/kill_driver.py: killed, or failing as on a full disk, at `when`."""
        command = [sys.executable, str(DRIVER), str(out), when, str(self.root / "count.txt"), *map(str, self.args(out))]
        return subprocess.run(command, capture_output=True, text=True, cwd=self.root, timeout=600,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERASWEAK_DATA": "/nonexistent"})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return Reference(tmp_path_factory.mktemp("faults"))


def scores(out):
    """Every figure of a finished run (seed metrics.json and results.json's summary), timings left out."""
    metrics = json.loads((out / "seed_0" / "metrics.json").read_text())
    summary = json.loads((out / "results.json").read_text())["summary"]
    return {key: value for key, value in {**metrics, **{f"mean {k}": v for k, v in summary.items()}}.items()
            if "seconds" not in key}


# absl's notice before TensorFlow's first C++ log line that passes TF_CPP_MIN_LOG_LEVEL (seen on a CPU without
# avx512, where no start-up line took it into the CLI's silenced import)
ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def stderr_lines(result):
    """kerasweak's lines on stderr; TensorFlow's C++ log lines (e.g. "E0000 00:00:… node_def_util.cc …") left out."""
    return [line for line in result.stderr.splitlines()
            if line.strip() and not re.match(r"[IWEF]\d{4} ", line) and line != ABSL_NOTICE]


def logged_epochs(out):
    return [int(line.split(",")[0]) for line in (out / "seed_0" / "log.csv").read_text().splitlines()[1:]]


def temporary_folders(out):
    return sorted(p for p in out.rglob(".*") if p.is_dir())


def test_a_run_prints_no_shuffle_warning(reference):
    assert "shuffle=True" not in reference.result.stderr
    assert logged_epochs(reference.out) == list(range(EPOCHS))


def test_a_killed_run_resumes_saying_from_which_epoch(reference, tmp_path):
    out = tmp_path / "killed"
    assert reference.drive(out, "epoch_3.weights.h5").returncode == -signal.SIGKILL  # as the third snapshot is written
    rerun = reference.run(out)
    assert "seed 0: resuming from epoch 3 (2 done)" in rerun.stdout.splitlines()
    assert logged_epochs(out) == list(range(EPOCHS))
    assert scores(out) == reference.scores


@pytest.mark.parametrize("torn", [1, 2])
def test_a_torn_backup_falls_back_to_the_one_before_or_restarts_the_stage(reference, tmp_path, torn):
    out = tmp_path / "torn"
    assert reference.drive(out, "epoch_3.weights.h5").returncode == -signal.SIGKILL
    backups = [out / "seed_0" / "backup" / f"epoch_{epoch}.weights.h5" for epoch in (2, 1)][:torn]
    for backup in backups:
        os.truncate(backup, 20000)  # as a kill during Keras's in-place write left it
    rerun = reference.run(out)
    lines = rerun.stdout.splitlines()
    for backup in backups:
        assert f"{backup}: cannot be loaded (OSError); trying the backup before it" in lines
    assert ("seed 0: resuming from epoch 2 (1 done)" in lines) == (torn == 1)
    assert any("with no backup to resume from: training it from the start" in line for line in lines) == (torn == 2)
    assert logged_epochs(out) == list(range(EPOCHS))
    assert scores(out) == reference.scores


@pytest.mark.parametrize("write", [8, 40, 75, 110])
def test_a_full_disk_is_one_line_and_a_rerun_ends_as_the_uninterrupted_run(reference, tmp_path, write):
    """Every write from the `write`-th on fails with ENOSPC (a wrapper: CI machines cannot mount a small disk)."""
    out = tmp_path / "full"
    failed = reference.drive(out, f"{write}/enospc")
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    [line] = stderr_lines(failed)
    assert line.startswith(f"error: no space left on device writing {out}/")
    for written in out.rglob("*.json"):
        json.loads(written.read_text())  # what was written before is whole
    reference.run(out)
    assert scores(out) == reference.scores


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs at tmp_path/disk (root only; skipped where mounting is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("free_kib", [600, 1900])
def test_a_real_full_disk_is_one_line_and_a_rerun_after_freeing_space_ends_as_the_uninterrupted_run(reference, small_disk,
                                                                                                   free_kib):
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - free_kib * 1024))
    out = small_disk / "out"
    failed = kerasweak(*reference.args(out), cwd=reference.root)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    [line] = stderr_lines(failed)
    assert line.startswith(f"error: no space left on device writing {out}/seed_0/")
    filler.unlink()
    reference.run(out)
    assert scores(out) == reference.scores


def test_sigterm_says_how_to_resume_and_the_rerun_cleans_stale_temporary_folders(reference, tmp_path):
    out = tmp_path / "terminated"
    process = subprocess.Popen([str(ENTRY_POINT), *map(str, reference.args(out))], cwd=reference.root, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    deadline = time.monotonic() + 300
    while not (out / "seed_0" / "backup").exists():  # the first epoch is done
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 143
    assert stderr_lines(subprocess.CompletedProcess([], 143, "", stderr)) == [TERMINATED]
    assert temporary_folders(out) == []

    host = socket.gethostname()
    stale = [out / ".model.abcdefgh", out / f".model.{dead_pid()}@{host}.abcdefgh"]  # an older kerasweak's; a killed one's
    live = out / f".model.{os.getpid()}@{host}.abcdefgh"  # a live process's (this one): kept
    for folder in (*stale, live):
        (folder / "model").mkdir(parents=True)
    reference.run(out)
    assert temporary_folders(out) == [live]
    assert scores(out) == reference.scores


def test_a_terminated_that_python_drops_prints_no_traceback_while_other_dropped_errors_still_do():
    """SIGTERM can land in a `__del__` or a garbage-collector callback (JAX's did, in CI): Python drops the Terminated
    raised there and would print its traceback above the one-line message; the CLI's hook keeps it quiet."""
    code = "\n".join([
        "import sys",
        "from kerasweak.errors import Terminated, drop_terminated_quietly",
        "sys.unraisablehook = drop_terminated_quietly(sys.unraisablehook)",
        "class Dropping:",
        "    def __init__(self, error): self.error = error",
        "    def __del__(self): raise self.error",
        "Dropping(Terminated())",
        "Dropping(ValueError('still reported'))",
        "print('ran on')",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0 and result.stdout == "ran on\n"
    assert "Terminated" not in result.stderr and "ValueError: still reported" in result.stderr


def dead_pid():
    """A process id no process has now."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def _proportions_csv(folder, name, rows=12, seed=0):
    """A proportions CSV of `rows` 40×40 images beside it, three classes."""
    rng = np.random.default_rng(seed)
    lines = ["image,a,b,c"]
    for i in range(rows):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
        share = rng.dirichlet(np.ones(3))
        lines.append(f"img{i}.png," + ",".join(f"{value:.6f}" for value in share / share.sum()))
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder / name


def test_train_proportions_refuses_another_run_and_never_overwrites_its_results(reference, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = _proportions_csv(tmp_path / "a", "first.csv"), _proportions_csv(tmp_path / "b", "second.csv", seed=1)
    out = tmp_path / "proportions"
    base = ["train-proportions", "--recipe", reference.recipe, "--epochs", 1]
    assert kerasweak(*base, first, "--out", out, cwd=tmp_path).returncode == 0
    again = kerasweak(*base, first, "--out", out, cwd=tmp_path)  # the same run: resumes (here: finished) and rewrites
    assert again.returncode == 0 and json.loads((out / "results.json").read_text())["proportions_csv"] == str(first)
    results = (out / "results.json").read_bytes()

    other = kerasweak(*base, second, "--out", out, "--epochs", 2, cwd=tmp_path)
    assert stderr_lines(other) == [f"error: {out}: holds a run with a different recipe or options; use another --out"]
    assert (out / "results.json").read_bytes() == results

    recipe_run = tmp_path / "recipe-run"
    shutil.copytree(reference.out, recipe_run)
    before = {p: p.read_bytes() for p in recipe_run.rglob("*") if p.is_file()}
    into = kerasweak(*base, first, "--out", recipe_run, cwd=tmp_path)
    assert stderr_lines(into) == [f"error: {recipe_run}: holds a run with a different recipe or options; use another --out"]
    assert {p: p.read_bytes() for p in recipe_run.rglob("*") if p.is_file()} == before


def test_evaluate_scores_a_max_samples_model_on_its_runs_own_test_patches(reference, tmp_path):
    out = tmp_path / "max-samples"
    result = kerasweak(*reference.args(out), "--max-samples", 14, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metadata = json.loads((out / "model" / "kerasweak.json").read_text())
    assert metadata["max_samples"] == 14 and len(metadata["test_patches"]) == 3  # round(14 * 0.2)
    seed = json.loads((out / "results.json").read_text())["per_seed"][0]
    evaluated = kerasweak("evaluate", out / "model", "--data", reference.data, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.splitlines()[0] == f"mIoU {100 * seed['miou']:.1f}  accuracy {100 * seed['accuracy']:.1f}"

    old = {key: value for key, value in metadata.items() if key not in ("max_samples", "test_patches", "test_sources")}
    (out / "model" / "kerasweak.json").write_text(json.dumps(old))  # an export from before the test set was recorded
    assert kerasweak("evaluate", out / "model", "--data", reference.data, cwd=tmp_path).returncode == 0


def test_dubai_reads_every_image_extension_skips_a_copied_tile_and_turns_images_upright(reference, tmp_path):
    from kerasweak.data import read_image

    data = write_fake_dubai(tmp_path / "data")
    tile1, tile2 = data / "Tile 1" / "images", data / "Tile 2" / "images"
    shutil.copytree(data / "Tile 1", data / "Tile 1 - Copy")
    for image, suffix in ((tile1 / "image_part_001.jpg", ".JPG"), (tile1 / "image_part_002.jpg", ".jpeg"),
                          (tile2 / "image_part_001.jpg", ".png")):
        image.rename(image.with_suffix(suffix))
    upright = read_image(tile2 / "image_part_002.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90° counter-clockwise: shown turned back clockwise
    Image.fromarray(np.rot90(upright)).save(tile2 / "image_part_002.png", exif=exif)
    (tile2 / "image_part_002.jpg").unlink()
    np.testing.assert_array_equal(read_image(tile2 / "image_part_002.png"), upright)

    recipe = write_recipe(tmp_path / "tiny-read.toml", method="spss", train={"epochs": 1})
    result = kerasweak("recipe", recipe, "--data", data, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tiny-read: 24 patches -> train 17, val 2, test 5" in result.stdout.splitlines()
    assert stderr_lines(result) == [f"warning: {data / 'Tile 1 - Copy'}: not read (Aerial Dubai reads only folders "
                                    "named 'Tile N'; a copy would be read twice)"]


def test_the_catalogue_lists_every_fault_row():
    catalogue = CATALOGUE.read_text()
    for row in FAULT_ROWS:
        assert f"`{row}`" in catalogue, row
    assert TERMINATED in catalogue and "no space left on device writing" in catalogue
