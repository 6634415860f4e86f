"""Shared fixtures: a tiny synthetic cohort per modality, generated once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ovfkit import synth

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def tiny_cohorts(tmp_path_factory) -> dict[str, Path]:
    """Manifest paths of a 10-patient X-ray and CT cohort (seed 7), shared by the whole session."""
    root = tmp_path_factory.mktemp("cohorts")
    return {m: synth.synth(m, root / m, seed=7, n_patients=10, n_reader2=4, n_jobs=2, progress=False)
            for m in synth.MODALITIES}


@pytest.fixture
def xray_copy(tiny_cohorts, tmp_path) -> Path:
    """A private copy of the tiny X-ray cohort that a test may corrupt."""
    dst = tmp_path / "xray"
    shutil.copytree(tiny_cohorts["xray"].parent, dst)
    return dst / "manifest.csv"
