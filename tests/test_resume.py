"""Stopping and resuming a run, and the quick study at other seeds (end to end, minutes).

A module of its own so that it runs beside the book tests (pytest-xdist hands out whole files).
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from ovfkit import runner
from tests.processes import default_sigint, descendants, running

SEED = 42  # the default of every README command


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The figures' data of `ovfkit run --modality ct --study astlof --profile quick` run once without interruption."""
    build = tmp_path_factory.mktemp("uninterrupted") / "build"
    runner.run("ct", "quick", seed=SEED, build_dir=build, book=False, study="astlof")
    return build / "ct" / "figures"


def _text(log):
    """The run's log so far, as UTF-8 whatever the locale (progress bars are not ASCII)."""
    return log.read_text(encoding="utf-8", errors="replace")


def _interrupt(command, log, ready, sig, what):
    """Start ``command``, send ``sig`` once ``ready()`` holds, and check that no process of it survives."""
    with open(log, "a", encoding="utf-8") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=default_sigint)
    deadline = time.monotonic() + 900
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}: {_text(log)[-2000:]}"
        assert time.monotonic() < deadline, f"{what} never started"
        time.sleep(0.2)
    pids = descendants(proc.pid)
    assert pids, f"no child processes during {what}"
    proc.send_signal(sig)
    proc.wait(timeout=120)
    deadline = time.monotonic() + 20
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = sorted(p for p in pids if running(p))
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"{len(left)} processes outlived the run interrupted ({sig.name}) during {what}"


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="process trees are read from /proc")
def test_an_interrupted_run_resumes_to_the_outputs_of_an_uninterrupted_one(uninterrupted, tmp_path):
    """`ovfkit run --modality ct --study astlof --profile quick`, killed during radiomics extraction (SIGKILL), during
    fine-tuning (Ctrl-C) and during a chapter (SIGKILL), then run again: no process of a killed run
    lingers, and the figures' data equal those of the uninterrupted run, byte for byte."""
    build, log = tmp_path / "build", tmp_path / "run.log"
    command = [sys.executable, "-m", "ovfkit", "run", "--modality", "ct", "--study", "astlof", "--profile", "quick",
               "--seed", str(SEED),
               "--build-dir", str(build), "--no-book"]
    cache = build / "cache"
    _interrupt(command, log, lambda: any((cache / "radiomics").rglob("*.parquet")), signal.SIGKILL,
               "radiomics extraction")
    _interrupt(command, log, lambda: any((cache / "deep").rglob("last.pt")), signal.SIGINT, "fine-tuning")
    _interrupt(command, log, lambda: "ct/06_model_comparison: executing" in _text(log), signal.SIGKILL,
               "chapter 06")
    with open(log, "a", encoding="utf-8") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
    reference = uninterrupted
    resumed = build / "ct" / "figures"
    names = sorted(p.name for p in reference.glob("*.csv"))
    assert names == sorted(p.name for p in resumed.glob("*.csv"))
    differ = [n for n in names
              if n != "deep_timing.csv" and _without_timing(reference / n) != _without_timing(resumed / n)]
    assert not differ, f"tables that differ from the uninterrupted run: {differ}"


# Columns that hold this run's speed: they differ between any two runs by design (deep_timing.csv is all such).
TIMING = ("train_images_per_s",)


def _without_timing(path) -> str:
    """A table's bytes, less its timing columns."""
    import pandas as pd

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return table.drop(columns=[c for c in TIMING if c in table.columns]).to_csv(index=False)


@pytest.mark.slow
@pytest.mark.parametrize("modality, seed", [("ct", 0)])  # the modality that failed at seed 42
def test_the_quick_study_runs_to_the_end_at_other_seeds(tmp_path, modality, seed):
    """A tiny cohort at another seed (a class may be missing from a fold or a cohort) runs every chapter."""
    rendered = runner.run(modality, "quick", seed=seed, build_dir=tmp_path / "build", book=False, study="astlof")
    assert rendered is None
    for chapter in runner.CHAPTERS:
        nb = tmp_path / "build" / "book" / modality / f"{chapter}.ipynb"
        assert nb.is_file(), chapter
        assert "Traceback" not in nb.read_text(encoding="utf-8"), chapter
