"""Process-tree helpers for the tests that kill runs (Linux /proc)."""

import os

from ovfkit import lifeline


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    fields = lifeline._stat(pid)
    return fields is not None and fields[0] not in (b"Z", b"X")


def descendants(pid: int) -> set:
    """Every process below ``pid`` (children, their children, ...)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := lifeline._stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def default_sigint() -> None:
    """``preexec_fn`` for a child that must take Ctrl-C as a terminal user's program does.

    pytest-xdist's workers ignore SIGINT, and an ignored signal stays ignored in every child; a run
    started from them would never see the Ctrl-C these tests send.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
