"""One source of run settings, and the book's table of them."""

import re
from pathlib import Path

import pytest

from ovfkit.settings import PROFILES, settings

METHODS = Path(__file__).resolve().parents[1] / "book" / "methods.md"


def _expected(profile: str) -> dict:
    x, ct = settings(profile, "xray"), settings(profile, "ct")
    zoo = settings(profile, "xray", study="fresh-old").zoo
    return {
        "CNN comparison: trained, epochs, px, flips": f"{zoo.trainable}, {zoo.epochs}, {zoo.size}, "
                                                      f"{'+'.join(zoo.flips) or 'none'}",
        "CNN comparison: SGD learning rate, L2 penalty, folds": f"{zoo.lr:g}, {zoo.weight_decay:g}, {zoo.folds}",
        "CNN comparison: stand-in pretext steps, crops": f"{zoo.proxy_steps}, {zoo.proxy_images}",
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


def test_the_fresh_old_study_is_xray_only_and_its_paper_profile_is_guo2026s_recipe():
    with pytest.raises(ValueError, match="the fresh-old study is on X-ray"):
        settings("default", "ct", study="fresh-old")
    s = settings("paper", "xray", study="fresh-old")
    assert (s.task.name, s.design, s.study) == ("acuity", "guo2026", "fresh-old")
    z = s.zoo
    assert (z.size, z.epochs, z.lr, z.momentum, z.step_epochs, z.gamma, z.trainable, z.flips, z.folds) == \
        (224, 100, 1e-3, 0.9, 30, 0.8, "all", ("lr", "tb"), 5)
    for profile in PROFILES:
        settings(profile, "xray", study="fresh-old").zoo.check()
    assert settings("default", "xray").zoo is None  # the other studies train no CNN zoo
