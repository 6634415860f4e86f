"""ovfkit: reproducible deep-learning radiomics for osteoporotic vertebral fractures."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ovfkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from ovfkit import lifeline as _lifeline

_lifeline.watch()  # a process started by `ovfkit run` ends when that run ends, even when it is killed
