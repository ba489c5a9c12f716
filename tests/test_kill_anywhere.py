"""A tiny deterministic run SIGKILLed at many points, rerun each time: every rerun finishes with the figures of the
uninterrupted run, bit for bit.

The kill points are spread evenly over the run's file operations in OUT
(tests/kill_driver.py kills just before the N-th: folders made, files opened to
write, h5 weights files created and closed, renames, removals), so they fall in
the claim, config.json, every epoch's log row, best weights and snapshot writes,
done.json, model.keras, metrics.json, the export, the figure and the results;
a few more kills land at random times (seeded) over the run, mostly mid-step.
Two kills run at once (the machine's two cores).
"""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from helpers import ENTRY_POINT, kerasweak, write_fake_dubai, write_recipe

FILE_OPERATION_KILLS = 20
RANDOM_TIME_KILLS = 4
DRIVER = Path(__file__).with_name("kill_driver.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERASWEAK_DATA": "/nonexistent"}


def scores(out):
    """Every figure of a finished run (seed metrics.json and results.json's summary), timings left out."""
    metrics = json.loads((out / "seed_0" / "metrics.json").read_text())
    summary = json.loads((out / "results.json").read_text())["summary"]
    return {key: value for key, value in {**metrics, **{f"mean {k}": v for k, v in summary.items()}}.items()
            if "seconds" not in key}


@pytest.mark.slow
def test_a_run_killed_anywhere_reruns_to_the_uninterrupted_runs_figures(tmp_path):
    started = time.monotonic()
    recipe = write_recipe(tmp_path / "tiny-kill.toml", method="spss", train={"epochs": 3, "patience": 3})
    data = write_fake_dubai(tmp_path / "data")

    def args(out):
        return ["recipe", str(recipe), "--data", str(data), "--out", str(out), "--deterministic"]

    def drive(out, when):
        command = [sys.executable, str(DRIVER), str(out), when, str(tmp_path / "count.txt"), *args(out)]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=600)

    uninterrupted = drive(tmp_path / "uninterrupted", "0")
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    reference, operations = scores(tmp_path / "uninterrupted"), int((tmp_path / "count.txt").read_text())
    duration = time.monotonic() - started

    def killed_at_operation(point):
        out = tmp_path / f"operation_{point}"
        assert drive(out, str(point)).returncode == -signal.SIGKILL, point
        return out

    def killed_at_time(delay):
        out = tmp_path / f"time_{delay:.2f}"
        process = subprocess.Popen([str(ENTRY_POINT), *args(out)], cwd=tmp_path, env=ENV,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL, delay  # not finished yet
        return out

    def kill_and_rerun(kill):
        out = kill()
        rerun = kerasweak(*args(out), cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        return out, scores(out), rerun.stdout

    points = np.unique(np.linspace(1, operations, FILE_OPERATION_KILLS).round().astype(int))
    delays = np.random.default_rng(0).uniform(0.3, 0.8, RANDOM_TIME_KILLS) * duration
    kills = [lambda p=int(p): killed_at_operation(p) for p in points] + [lambda d=d: killed_at_time(d) for d in delays]
    with ThreadPoolExecutor(max_workers=2) as pool:
        reruns = list(pool.map(kill_and_rerun, kills))

    for out, figures, _ in reruns:
        assert figures == reference, out.name
    resumed = sum("resuming from epoch" in stdout for _, _, stdout in reruns)
    print(f"\n{len(kills)} kills ({len(points)} of {operations} file operations, {len(delays)} at random times), "
          f"{resumed} reruns resumed mid-training; {time.monotonic() - started:.0f} s")
    assert len(kills) >= 20 and resumed > 0
