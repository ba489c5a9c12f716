"""Several processes running one command share its seeds (kerasweak.run_folder.claim_seed)."""

import json
import socket
import subprocess
import sys

import pytest

from kerasweak.run_folder import CLAIM, claim_seed
from kerasweak.runner import run_recipe
from helpers import row_values, write_sweep


@pytest.fixture
def other_process():
    """A live process of this host that is not the test's."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield sleeper
    sleeper.kill()
    sleeper.wait()


def _ended_pid():
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid


def _claim(seed_dir, host, pid):
    seed_dir.mkdir(parents=True)
    (seed_dir / CLAIM).write_text(json.dumps({"host": host, "pid": pid}))


def test_a_seed_is_claimed_once_and_a_dead_claim_is_taken_over(tmp_path, other_process):
    assert claim_seed(tmp_path / "mine") and claim_seed(tmp_path / "mine")  # this process may claim again
    _claim(tmp_path / "live", socket.gethostname(), other_process.pid)
    assert not claim_seed(tmp_path / "live")
    _claim(tmp_path / "remote", "another-host", 1)
    assert not claim_seed(tmp_path / "remote")  # cannot be checked from here, so it holds
    _claim(tmp_path / "dead", socket.gethostname(), _ended_pid())
    assert claim_seed(tmp_path / "dead")
    assert json.loads((tmp_path / "dead" / CLAIM).read_text())["pid"] != json.loads(
        (tmp_path / "live" / CLAIM).read_text())["pid"]


@pytest.mark.slow
def test_a_seed_claimed_elsewhere_is_left_to_its_process_and_the_last_to_finish_writes_results(
        tmp_path, fake_dubai, tiny_recipe, other_process):
    out = tmp_path / "out"
    _claim(out / "seed_1", socket.gethostname(), other_process.pid)
    lines = []
    assert run_recipe(str(tiny_recipe("spss")), data=fake_dubai, out=out, seeds=2, verbose=0, echo=lines.append) is None
    assert (out / "seed_0" / "metrics.json").exists() and not (out / "seed_0" / CLAIM).exists()
    assert not (out / "seed_1" / "metrics.json").exists() and not (out / "results.json").exists()
    assert any(line.startswith(f"seed 1: claimed by process {other_process.pid}") for line in lines)

    other_process.kill()  # it ended without finishing seed 1, so the next run takes the seed over
    other_process.wait()
    results = run_recipe(str(tiny_recipe("spss")), data=fake_dubai, out=out, seeds=2, verbose=0, echo=lines.append)
    assert results["seeds"] == 2 and [m["seed"] for m in results["per_seed"]] == [0, 1]
    assert "seed 0: finished earlier, skipping" in lines


@pytest.mark.slow
def test_a_sweep_with_a_setting_training_elsewhere_writes_a_partial_table(tmp_path, fake_dubai, other_process):
    recipe = write_sweep(tmp_path / "tiny-sweep.toml", "noise", [0, 10])
    out = tmp_path / "out"
    _claim(out / "noise_0" / "seed_0", socket.gethostname(), other_process.pid)
    lines = []
    assert run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=lines.append) is None
    assert (out / "noise_10" / "results.json").exists() and not (out / "noise_0" / "results.json").exists()
    assert "tiny-sweep: noise_0 still training in other processes; the last to finish writes the full table" in lines
    table = (out / "results.md").read_text()
    assert row_values(table) == ["10"]
    assert "**Partial:** 1 of 2 settings. Not finished yet: noise_0;" in table
    summary = json.loads((out / "results.json").read_text())
    assert [s["value"] for s in summary["settings"]] == [10] and summary["unfinished"] == ["noise_0"]
