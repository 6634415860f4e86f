"""``python -m ovfkit``: the command line (same as the ``ovfkit`` command)."""

from ovfkit.cli import app

app(prog_name="ovfkit")
