"""One source of run settings, and the book's table of them."""

import re
from pathlib import Path

import pytest

from ovfkit.settings import PROFILES, settings

METHODS = Path(__file__).resolve().parents[1] / "book" / "methods.md"


def _expected(profile: str) -> dict:
    x, ct = settings(profile, "xray"), settings(profile, "ct")
    return {
        "patients per modality": str(x.n_patients) if x.n_patients else "the paper's cohort",
        "bootstrap resamples": str(x.n_boot),
        "nested CV: outer / tuning folds": f"{x.outer_splits} / {x.inner_splits}",
        "fine-tuning: layers, epochs, X-ray px": f"{x.deep.trainable}, {x.deep.epochs}, {x.deep.size}",
        "cross-fitting folds (networks per backbone)": str(x.deep.crossfit_folds),
        "deep PCA components per backbone": str(x.fusion.deep_components),
        "LASSO CV folds": str(ct.fusion.lasso_cv),
    }


@pytest.mark.parametrize("profile", PROFILES)
def test_the_methods_page_states_each_profiles_settings_as_the_code_has_them(profile):
    rows = {m.group(1).strip(): [c.strip() for c in m.group(2).split("|")]
            for m in re.finditer(r"^\| ([^|]+) \|(.+)\|$", METHODS.read_text(encoding="utf-8"), re.M)}
    column = PROFILES.index(profile)
    for name, value in _expected(profile).items():
        assert rows[name][column] == value, (profile, name)


@pytest.mark.parametrize("modality", ["xray", "ct"])
def test_settings_are_frozen_and_refuse_unknown_names(modality):
    s = settings("default", modality)
    with pytest.raises(Exception):
        s.n_boot = 1
    with pytest.raises(ValueError, match="profile 'fast' is not one of quick, default, paper"):
        settings("fast", modality)
    with pytest.raises(ValueError, match="modality 'mri'"):
        settings("default", "mri")
