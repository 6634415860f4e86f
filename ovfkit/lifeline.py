"""The processes of an ``ovfkit run`` end with it, even when it is killed with SIGKILL.

A killed process runs no handler, so its children have to notice on their own. ``ovfkit run`` calls
:func:`hold`, which puts ``OVFKIT_LIFELINE=<pid>:<start time>`` into its environment; every process it
starts inherits the variable: the papermill kernels that execute the chapters, their joblib (loky)
workers (radiomics extraction, nested cross-validation) and the cohort generator's workers. Importing
ovfkit in such a process starts a daemon thread (:func:`watch`) that checks twice a second that the run
is still alive, and otherwise ends its own process at once (``os._exit``), so no worker computes on for a
run that is gone (loky's idle workers would otherwise wait 300 s, and busy ones finish their task first).

The start time (``/proc/<pid>/stat``, Linux) guards against a recycled pid; where ``/proc`` is missing,
the pid alone is checked. SIGINT (Ctrl-C) needs none of this: papermill's kernel manager kills each
kernel's process group on the way out.
"""

from __future__ import annotations

import os
import threading
import time

VARIABLE = "OVFKIT_LIFELINE"
_watching = False


def _start_time(pid: int) -> str:
    """The process' start time in clock ticks since boot ('' where /proc is not available)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def hold() -> None:
    """Make this process the run every ovfkit process started from now on lives for (sets the variable)."""
    os.environ[VARIABLE] = f"{os.getpid()}:{_start_time(os.getpid())}"


def alive(token: str) -> bool:
    """Whether the process named by a ``<pid>:<start time>`` token is still the one that set it."""
    pid_text, _, started = token.partition(":")
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else: not our run any more
        return False
    return not started or _start_time(pid) in ("", started)


def watch(interval: float = 0.5) -> bool:
    """Start the watch thread if this process descends from a held run; return whether it watches."""
    global _watching
    token = os.environ.get(VARIABLE, "")
    if _watching or not token or token.split(":", 1)[0] == str(os.getpid()):
        return _watching
    try:
        int(token.split(":", 1)[0])
    except ValueError:
        return False

    def loop():
        while alive(token):
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=loop, name="ovfkit-lifeline", daemon=True).start()
    _watching = True
    return True
