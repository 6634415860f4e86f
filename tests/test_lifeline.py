"""Killing `ovfkit run` (SIGKILL: no handler runs) leaves none of its processes behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ovfkit import lifeline

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="process states are read from /proc")

ROOT = textwrap.dedent("""
    import subprocess, sys
    from ovfkit import lifeline
    lifeline.hold()
    subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]]).wait()
""")

CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import ovfkit
    from joblib import Parallel, delayed

    def work(i, folder):
        import ovfkit  # a worker that runs ovfkit code has imported it
        Path(folder, f"worker{i}").write_text(str(os.getpid()))
        time.sleep(120)

    Path(sys.argv[1], "child").write_text(str(os.getpid()))
    Parallel(n_jobs=2, backend="loky")(delayed(work)(i, sys.argv[1]) for i in range(2))
""")


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killing_the_run_ends_its_kernels_and_their_joblib_workers(tmp_path):
    (tmp_path / "root.py").write_text(ROOT)
    (tmp_path / "child.py").write_text(CHILD)
    root = subprocess.Popen([sys.executable, str(tmp_path / "root.py"), str(tmp_path / "child.py"), str(tmp_path)],
                            start_new_session=True)
    names = ("child", "worker0", "worker1")
    deadline = time.monotonic() + 120
    while not all((tmp_path / n).exists() and (tmp_path / n).read_text() for n in names):
        assert time.monotonic() < deadline and root.poll() is None, "the processes did not start"
        time.sleep(0.2)
    pids = [int((tmp_path / n).read_text()) for n in names]
    assert all(map(_running, pids))
    root.send_signal(signal.SIGKILL)
    root.wait()
    deadline = time.monotonic() + 10
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in pids if _running(p)]
    for p in left:  # do not leave them to the next test
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes {left} of the killed run are still running"


def test_a_run_watches_nothing_and_a_dead_token_is_not_alive(monkeypatch):
    monkeypatch.delenv(lifeline.VARIABLE, raising=False)
    assert lifeline.alive(f"{os.getpid()}:{lifeline._start_time(os.getpid())}")
    assert not lifeline.alive(f"{os.getpid()}:1")  # same pid, another start time: a recycled pid
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not lifeline.alive(f"{dead.pid}:")
