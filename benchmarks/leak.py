"""How much the in-sample deep features inflate the headline AUCs: the book's chosen models, refitted on
deep features fine-tuned on all training rows (the papers' way) instead of cross-fitted ones.

For each modality and backbone it takes the classifier the book chose (training nested CV, cross-fitted
features), runs the same nested cross-validation and held-out prediction on the in-sample features, and
prints both macro AUCs (95% patient-bootstrap CI) on the training cohort (nested CV) and the external
cohort. Reuses a built book's caches, so only the in-sample networks and one classifier per backbone are
fitted:

    .venv/bin/python benchmarks/leak.py --build-dir build/default [--profile default] [--seed 42]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pandas as pd  # noqa: E402

from ovfkit import fusion, study  # noqa: E402
from ovfkit.manifest import load_manifest  # noqa: E402
from ovfkit.settings import settings as run_settings  # noqa: E402

BACKBONES = ["proxy-natural", "proxy-medical"]


def headline(features, settings, cache_dir, chosen: dict) -> pd.DataFrame:
    rows = []
    for backbone, model in chosen.items():
        st = dataclasses.replace(settings, classifiers=(model,))
        one = study.Features(features.X[features.columns([fusion.RADIOMICS, backbone])], features.icc, [backbone],
                             features.manifest, features.dropped, features.task)
        result = study.model_comparison(one, st, cache_dir, progress=False)
        scores = result.scores(n_boot=settings.n_boot, seed=settings.seed)
        rows.append(scores[scores["cohort"].isin(["train", "external"])].assign(backbone=backbone))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, default=Path("build/default"))
    ap.add_argument("--profile", default="default")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    cache = args.build_dir / "cache"
    out = []
    for modality in ("xray", "ct"):
        m = load_manifest(args.build_dir / "data" / modality / "manifest.csv")
        settings = run_settings(args.profile, modality, args.seed)
        crossfit = study.load_features(m, settings, cache_dir=cache, backbones=BACKBONES)
        book = study.model_comparison(crossfit, settings, cache, progress=False)  # the book's cached run
        chosen = {b: book.best(f"early {b}") for b in BACKBONES}
        leaky = study.load_features(m, settings, cache_dir=cache, backbones=BACKBONES, training_rows="in-sample")
        for name, features in (("cross-fitted", crossfit), ("in-sample (leaky)", leaky)):
            out.append(headline(features, settings, cache, chosen).assign(modality=modality, features=name))
    table = pd.concat(out, ignore_index=True)
    table["macro AUC (95% CI)"] = table.apply(lambda r: f"{r.macro_auc:.3f} ({r.ci_low:.3f}-{r.ci_high:.3f})",
                                              axis=1)
    wide = table.pivot_table(index=["modality", "backbone", "model", "cohort"], columns="features",
                             values="macro AUC (95% CI)", aggfunc="first")
    print(wide.to_string())


if __name__ == "__main__":
    main()
