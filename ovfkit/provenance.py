"""Provenance of a run: versions, git commit, lock-file and manifest hashes, device."""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import ovfkit

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = REPO_ROOT / "requirements.lock"
KEY_PACKAGES = ("numpy", "scipy", "pandas", "scikit-learn", "SimpleITK", "pyradiomics", "torch", "torchvision",
                "statsmodels", "tableone", "papermill", "jupyter-book")


def json_digest(obj, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``obj`` as sorted-key JSON (``str`` for other types).

    The one way a cache key is made from settings: two equal dicts give the same key whatever their order.
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_digest(path: str | os.PathLike, known: str = "") -> str:
    """SHA-256 identifying an image's content: ``known`` (a manifest's hash) if given, else the file's
    hash, or for a DICOM series folder the hash of its files' hashes in name order."""
    if known:
        return known
    p = Path(path)
    if p.is_dir():
        return hashlib.sha256("".join(sha256_file(f) for f in sorted(p.iterdir()) if f.is_file()).encode()).hexdigest()
    return sha256_file(p)


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or 'missing' if it does not exist."""
    return sha256_file(path) if Path(path).is_file() else "missing"


def source_hash() -> str:
    """Hash of ovfkit's own code and shipped parameter files (what a cached result depends on)."""
    pkg = Path(ovfkit.__file__).parent
    h = hashlib.sha256()
    for f in sorted([*pkg.rglob("*.py"), *pkg.glob("params/*.yaml"), *pkg.glob("data/*.csv")]):
        h.update(f.relative_to(pkg).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _module_file(name: str) -> Path | None:
    """The source file of an ovfkit module name, or None when it names no module of the package."""
    pkg = Path(ovfkit.__file__).parent
    parts = name.split(".")[1:]
    base = pkg.joinpath(*parts) if parts else pkg
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _ovfkit_imports(name: str, path: Path) -> set[str]:
    """Names of the ovfkit modules that a module imports anywhere in its body (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "ovfkit")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] != "ovfkit":
                continue
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}") is not None)
    return {m for m in found if _module_file(m) is not None}


@functools.lru_cache(maxsize=None)
def code_digest(*modules: str) -> str:
    """16 hex digits identifying the code of ``modules`` and of every ovfkit module they import, transitively.

    A cache key that includes it changes whenever any code a cached value depends on changes, and only
    then: the modules are found by reading the import statements (:mod:`ast`), not from a hand-kept list.

    Parameters
    ----------
    *modules : str
        Dotted module names, e.g. ``"ovfkit.deep.inputs"`` (``__name__`` inside a module).
    """
    seen, todo = {}, list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            raise ValueError(f"{name!r} is not a module of ovfkit; pass dotted names such as 'ovfkit.deep.inputs'")
        seen[name] = path
        todo.extend(_ovfkit_imports(name, path) - seen.keys())
    h = hashlib.sha256()
    for name in sorted(seen):
        h.update(name.encode() + b"\0" + seen[name].read_bytes())
    return h.hexdigest()[:16]


def git_commit() -> str:
    """Commit of the source tree, with '+dirty' if it has uncommitted changes; 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device() -> str:
    """'GPU: <name>' when torch sees CUDA, else 'CPU: <processor>, <n> cores'."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU: {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    cpu = platform.processor() or platform.machine()
    return f"CPU: {cpu}, {os.cpu_count()} cores"


def torch_build() -> str:
    """torch's version with the CUDA toolkit it was built for, e.g. '2.9.1+cu128 (CUDA 12.8)', or
    '... (CPU-only build)'; 'not installed' without torch."""
    try:
        import torch
    except ImportError:
        return "not installed"
    cuda = torch.version.cuda
    return f"{torch.__version__} ({f'CUDA {cuda}' if cuda else 'CPU-only build'})"


def package_versions(names=KEY_PACKAGES) -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def record(manifest: str | os.PathLike | None = None, seeds: dict | None = None) -> dict:
    """Everything the provenance footer shows, as a flat dict of strings."""
    rec = {
        "ovfkit": ovfkit.__version__,
        "git commit": git_commit(),
        "requirements.lock sha256": file_hash(LOCK_FILE)[:16],
        "Python": platform.python_version(),
        "OS": platform.platform(),
        "torch build": torch_build(),
        "device": device(),
    }
    if manifest is not None:
        rec["manifest sha256"] = file_hash(manifest)[:16]
    for k, v in (seeds or {}).items():
        rec[k] = str(v)
    return rec
