"""The whole-run ETA (kerasweak.progress.RunEta), driven by a fake clock."""

from kerasweak.progress import RunEta, duration, seed_progress


class FakeClock:
    def __init__(self, epoch_seconds):
        self.now, self.epoch_seconds = 0.0, list(epoch_seconds)

    def __call__(self):
        return self.now


def _run(epoch_seconds, epochs, later_seeds, start_epoch=0):
    lines, clock = [], FakeClock(epoch_seconds)
    eta = RunEta(epochs, after_epochs=2, clock=clock)
    with seed_progress(seed=1, later_seeds=later_seeds, echo=lines.append):
        for epoch, seconds in enumerate(epoch_seconds, start=start_epoch):
            eta.on_epoch_begin(epoch)
            clock.now += seconds
            eta.on_epoch_end(epoch)
    return lines


def test_the_eta_is_the_remaining_epochs_at_the_mean_epoch_time_for_the_stage_and_the_later_seeds():
    lines = _run([30, 40, 35, 35], epochs=100, later_seeds=2)
    # after 2 epochs: 35 s an epoch; 98 epochs left = 3430 s = 57 min; 2 later seeds × 100 × 35 s = 7000 s more
    assert lines == ["seed 1: epoch 2/100 at 35 s an epoch; at most 57 min left for this stage (early stopping usually "
                     "ends it sooner); at most 2 h 53 min for the run's 2 later seeds too"]


def test_a_resumed_stage_counts_from_its_epoch_and_the_last_seed_names_no_later_ones():
    assert _run([10, 10], epochs=50, later_seeds=0, start_epoch=40) == [
        "seed 1: epoch 42/50 at 10 s an epoch; at most 80 s left for this stage (early stopping usually ends it sooner)"]


def test_outside_a_run_nothing_is_printed(capsys):
    eta = RunEta(10, clock=FakeClock([]))
    for epoch in range(3):
        eta.on_epoch_begin(epoch)
        eta.on_epoch_end(epoch)
    assert capsys.readouterr().out == ""
    assert duration(45) == "45 s" and duration(600) == "10 min" and duration(7500) == "2 h 05 min"


def test_a_stage_validating_every_third_epoch_is_foreseen_with_its_remaining_validations_only():
    lines, clock = [], FakeClock([])
    eta = RunEta(10, after_epochs=2, clock=clock, validated=[1, 4, 7, 10])
    with seed_progress(seed=1, later_seeds=1, echo=lines.append):
        for epoch, (training, validation) in enumerate([(20, 10), (20, None)]):
            eta.on_epoch_begin(epoch)
            clock.now += training
            if validation is not None:
                eta.on_test_begin()
                clock.now += validation
                eta.on_test_end()
            eta.on_epoch_end(epoch)
    # 20 s training an epoch, 10 s a validation: 8 epochs and 3 validations left = 190 s; a later seed 10 × 20 + 4 × 10 s
    assert lines == ["seed 1: epoch 2/10 at 25 s an epoch; at most 3 min left for this stage (early stopping usually "
                     "ends it sooner); at most 7 min for the run's 1 later seed too"]
