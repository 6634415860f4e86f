"""The processes of an ``ovfkit run`` end with it, even when it is killed with SIGKILL.

A killed process runs no handler, so its children have to notice on their own. :func:`ovfkit.runner.run`
calls :func:`hold`, which puts ``OVFKIT_LIFELINE=<pid>:<start time>`` into its environment; every process
it starts inherits the variable. Importing ovfkit in such a process starts a daemon thread
(:func:`watch`) that checks twice a second that the run is still alive; when it is not, the thread kills
its own process group if its process leads one, and ends its process (``os._exit``).

The heavy children of a run lead their own process group, so a dead run takes their idle workers with
them too (a loky worker that never received a task never imports ovfkit and would otherwise wait 300 s
for work):

* each notebook kernel: jupyter_client starts it in a new session, and :data:`KERNEL_ARGUMENTS` make it
  import ovfkit at start-up and leave the watching to ovfkit (ipykernel's own parent poller would end the
  kernel with ``os._exit`` first, orphaning its joblib workers);
* the cohort generator, and each modality when ``ovfkit run --modality all`` runs them side by side:
  :func:`run_groups` runs them as commands, each in a group of its own.

A run is alive while its pid exists, is not a zombie and has the start time recorded in the token (a
recycled pid has another; Linux ``/proc``; elsewhere the pid alone is checked). A process whose run is
already gone when it imports ovfkit (a kernel that was starting as the run was killed) ends at once. The
variable lives only while the run does (:func:`holding` restores the environment after it).

Ctrl-C (SIGINT) is handled by the libraries on the way out: nbclient shuts each kernel down (SIGINT to
its process group, then SIGTERM and SIGKILL after 2.5 s each), and :func:`run_group` kills the
generator's group; the survivors then see the run end and exit. All of this takes a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time

VARIABLE = "OVFKIT_LIFELINE"
#: Extra kernel arguments for papermill (nbclient's ``extra_arguments``): import ovfkit at start-up, so the
#: kernel watches its run from its first moment, leave parent polling to ovfkit, and keep the kernel from
#: printing its connection banner to the terminal (it does so when it has no parent to poll).
KERNEL_ARGUMENTS = ("--IPKernelApp.parent_handle=0", "--IPKernelApp.exec_lines=__import__('ovfkit')",
                    "--IPKernelApp.log_level=CRITICAL")
_watching = False


def _stat(pid: int) -> list | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None


def _start_time(pid: int) -> str:
    """The process' start time in clock ticks since boot ('' where /proc is not available)."""
    fields = _stat(pid)
    return fields[19].decode("ascii", "replace") if fields and len(fields) > 19 else ""


def token(pid: int | None = None) -> str:
    """``<pid>:<start time>`` of a process (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid)}"


def hold() -> None:
    """Make this process the run that every ovfkit process started from now on lives for."""
    os.environ[VARIABLE] = token()


@contextlib.contextmanager
def holding():
    """:func:`hold` for the duration of a ``with`` block; the previous environment comes back after it."""
    before = os.environ.get(VARIABLE)
    hold()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = before


def alive(run: str) -> bool:
    """Whether the process named by a ``<pid>:<start time>`` token is still running and the same process."""
    pid_text, _, started = run.partition(":")
    pid = int(pid_text)
    fields = _stat(pid)
    if fields is None:
        if os.path.isdir("/proc"):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, but another user's
            return True
        return True
    if fields[0] in (b"Z", b"X"):  # killed, not yet reaped
        return False
    return not started or len(fields) <= 19 or fields[19].decode("ascii", "replace") == started


def _end() -> None:
    """Kill this process' group if it leads one (its workers with it), then end the process."""
    try:
        if os.getpgid(0) == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
    finally:
        os._exit(1)


def watch(interval: float = 0.5) -> bool:
    """Start the watch thread if this process descends from a held run; return whether it watches.

    If that run is already gone, the process ends here (see the module docstring).
    """
    global _watching
    run = os.environ.get(VARIABLE, "")
    if _watching or not run or run == token():
        return _watching
    try:
        gone = not alive(run)
    except ValueError:  # not a token of ours
        return False
    if gone:  # started as its run was killed
        _end()

    def loop():
        while alive(run):
            time.sleep(interval)
        _end()

    threading.Thread(target=loop, name="ovfkit-lifeline", daemon=True).start()
    _watching = True
    return True


def _after_fork() -> None:  # a forked child has no threads: watch again
    global _watching
    _watching = False
    watch()


os.register_at_fork(after_in_child=_after_fork)


def run_groups(commands: list, env: dict | None = None) -> None:
    """Run ``commands`` side by side, each in a process group of its own, and wait for all of them.

    On any exception (Ctrl-C included) or when one command fails, every group still running is killed;
    a failure raises ``subprocess.CalledProcessError`` for the first command that failed. ``env``:
    variables added to this process's environment for every command.
    """
    full = None if env is None else {**os.environ, **env}
    procs = [subprocess.Popen(c, start_new_session=True, env=full) for c in commands]

    def kill_all():
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait()

    try:
        pending = list(procs)
        while pending:
            for p in list(pending):
                code = p.poll()
                if code is None:
                    continue
                pending.remove(p)
                if code:
                    kill_all()
                    raise subprocess.CalledProcessError(code, commands[procs.index(p)])
            time.sleep(0.2)
    except BaseException:
        kill_all()
        raise


def run_group(command: list) -> None:
    """:func:`run_groups` of one command."""
    run_groups([command])
