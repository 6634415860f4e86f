"""pyproject.toml, environment.yml and requirements.lock must describe the same environment."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = data["optional-dependencies"]
    return data["dependencies"] + [r for name in ("book", "dask", "test") for r in extras[name]
                                   if not r.startswith("ovfkit[")]


def test_the_library_needs_no_book_tool_chain():
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {_name(r) for r in data["dependencies"]}
    assert not core & {"papermill", "jupyter-book", "jupyter", "dask", "sphinxcontrib-bibtex"}, core


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip) == sorted(_pyproject())


def test_lock_file_pins_every_requirement_exactly():
    lines = [ln for ln in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^\s=]+", ln) for ln in lines), "only exact pins"
    pinned = {_name(ln) for ln in lines}
    missing = {_name(r) for r in _pyproject()} - pinned
    assert not missing, f"not in requirements.lock: {missing}; run `make lock`"


def test_torch_pins_respect_the_machine_cap():
    lock = (REPO / "requirements.lock").read_text(encoding="utf-8")
    torch = re.search(r"^torch==(\S+)", lock, re.M).group(1)
    vision = re.search(r"^torchvision==(\S+)", lock, re.M).group(1)
    as_tuple = lambda v: tuple(int(x) for x in v.split("+")[0].split(".")[:3])  # noqa: E731
    assert as_tuple(torch) <= (2, 14, 1) and as_tuple(vision) <= (0, 29, 1)
