"""Killing `ovfkit run` (SIGKILL: no handler runs) leaves none of its processes behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ovfkit import lifeline
from tests.processes import default_sigint, descendants, running

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="process states are read from /proc")

# The run: holds the lifeline, starts a "kernel" in a session of its own (as jupyter_client does) and waits.
ROOT = textwrap.dedent("""
    import subprocess, sys
    from ovfkit import lifeline
    lifeline.hold()
    subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], start_new_session=True).wait()
""")

# The "kernel": three loky workers, one busy in ovfkit code, two idle (they never import ovfkit).
KERNEL = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import ovfkit
    from joblib.externals.loky import get_reusable_executor

    def work(folder):
        import ovfkit
        Path(folder, "busy").write_text(str(os.getpid()))
        time.sleep(120)

    executor = get_reusable_executor(max_workers=3)
    executor.submit(work, sys.argv[1])
    Path(sys.argv[1], "kernel").write_text(str(os.getpid()))
    time.sleep(120)
""")


def test_killing_the_run_ends_its_kernels_and_their_idle_and_busy_workers(tmp_path):
    (tmp_path / "root.py").write_text(ROOT)
    (tmp_path / "kernel.py").write_text(KERNEL)
    root = subprocess.Popen([sys.executable, str(tmp_path / "root.py"), str(tmp_path / "kernel.py"), str(tmp_path)],
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not ((tmp_path / "kernel").exists() and (tmp_path / "busy").exists()
               and len(descendants(root.pid)) >= 5):  # the kernel, its three workers, loky's resource tracker
        assert time.monotonic() < deadline and root.poll() is None, "the processes did not start"
        time.sleep(0.2)
    pids = descendants(root.pid)
    assert len(pids) >= 5 and all(map(running, pids))
    os.kill(root.pid, signal.SIGKILL)  # not reaped yet: the run is a zombie, which is dead too
    deadline = time.monotonic() + 10
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = sorted(p for p in pids if running(p))
    for p in left:  # do not leave them to the next test
        os.kill(p, signal.SIGKILL)
    root.wait()
    assert not left, f"processes {left} of the killed run are still running"


def test_watch_follows_a_live_foreign_run_only(monkeypatch):
    monkeypatch.setattr(lifeline, "_watching", False)
    monkeypatch.setenv(lifeline.VARIABLE, lifeline.token())
    assert not lifeline.watch()  # the run itself does not watch
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        monkeypatch.setenv(lifeline.VARIABLE, lifeline.token(parent.pid))
        monkeypatch.setattr(lifeline.threading, "Thread", lambda **kw: type("T", (), {"start": lambda self: None})())
        assert lifeline.watch()
    finally:
        parent.kill()
        parent.wait()


def test_a_process_whose_run_is_already_gone_ends_at_import_with_its_group():
    """A kernel that was starting when its run was killed imports ovfkit after the run is gone: it must end
    (with the workers of its group), not live on as an orphan."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    env = {**os.environ, lifeline.VARIABLE: lifeline.token(dead.pid)}
    code = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; "
            "time.sleep(60)']); print(child.pid, flush=True); time.sleep(1); import ovfkit; time.sleep(60)")
    late = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True, stdout=subprocess.PIPE,
                            text=True)
    child = int(late.stdout.readline())
    assert late.wait(timeout=30) != 0  # ended at `import ovfkit`, long before its 60 s sleep
    deadline = time.monotonic() + 5
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive_child = running(child)
    if alive_child:
        os.kill(child, signal.SIGKILL)
    assert not alive_child, "the group's other process outlived the ended one"


def test_alive_tells_a_recycled_pid_and_a_zombie_from_the_run():
    assert lifeline.alive(lifeline.token())
    assert not lifeline.alive(f"{os.getpid()}:1")  # same pid, another start time: a recycled pid
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    run = lifeline.token(child.pid)
    assert lifeline.alive(run)
    child.kill()
    deadline = time.monotonic() + 5
    while lifeline._stat(child.pid)[0] != b"Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not lifeline.alive(run)  # killed, not yet reaped
    child.wait()
    assert not lifeline.alive(run)


def test_run_group_kills_the_whole_group_on_ctrl_c(tmp_path):
    """Ctrl-C during ``run_group`` (the cohort generator) kills the command and its own children."""
    (tmp_path / "group.py").write_text(textwrap.dedent(f"""
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(tmp_path / "up")!r}, "w").write(str(os.getpid()))
        time.sleep(60)
    """))
    driver = subprocess.Popen([sys.executable, "-c", "import sys; from ovfkit import lifeline; "
                               f"lifeline.run_group([sys.executable, {str(tmp_path / 'group.py')!r}])"],
                              stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 60
    while not ((tmp_path / "up").exists() and (tmp_path / "up").read_text()):
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.1)
    group = int((tmp_path / "up").read_text())
    members = descendants(group) | {group}
    assert len(members) == 2
    driver.send_signal(signal.SIGINT)
    assert "KeyboardInterrupt" in driver.communicate(timeout=30)[1]
    deadline = time.monotonic() + 5
    while any(map(running, members)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in members if running(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes {left} of the interrupted command are still running"


def test_run_groups_stops_the_others_when_one_fails():
    t0 = time.monotonic()
    with pytest.raises(subprocess.CalledProcessError) as err:
        lifeline.run_groups([[sys.executable, "-c", "import time; time.sleep(60)"],
                             [sys.executable, "-c", "import sys; sys.exit(3)"]])
    assert err.value.returncode == 3 and time.monotonic() - t0 < 30  # the sleeper was killed, not awaited
