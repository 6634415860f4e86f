"""Patient-bootstrap CI of the macro AUC: ovfkit's vectorized bootstrap vs a loop over scikit-learn.

Both use the same resamples (``ovfkit.metrics.bootstrap_weights``); the loop expands each resample and
calls ``sklearn.metrics.roc_auc_score`` (macro one-vs-rest), as most radiomics code does. Prints the
seconds of each, their ratio (target on the 2-core machine: >= 20x) and the largest difference between
the two sets of intervals (must be 0 up to rounding).

    .venv/bin/python benchmarks/metrics.py [--boot 2000] [--sizes 200 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from ovfkit import metrics


def cohort(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.choice([0, 1, 2], n, p=[0.45, 0.4, 0.15])
    logits = rng.normal(size=(n, 3)) + 1.2 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    groups = rng.integers(0, int(n * 0.87), n)  # about 1.15 vertebrae per patient, as in the cohorts
    return y, proba, groups


def loop_ci(y, proba, W, alpha=0.05):
    stats = []
    for w in W:
        idx = np.repeat(np.arange(len(y)), w)
        if len(np.unique(y[idx])) < 3:
            continue
        stats.append(roc_auc_score(y[idx], proba[idx], multi_class="ovr", average="macro"))
    return np.quantile(stats, [alpha / 2, 1 - alpha / 2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 20000])
    args = ap.parse_args()
    print(f"{'cases':>7} {'resamples':>9} {'sklearn loop s':>15} {'ovfkit s':>9} {'ratio':>7} {'max |diff|':>11}")
    for n in args.sizes:
        y, proba, groups = cohort(n)
        t0 = time.perf_counter()
        _, lo, hi = metrics.patient_bootstrap_ci(y, proba, groups, n_boot=args.boot, seed=1)
        t_ovf = time.perf_counter() - t0
        W = metrics.bootstrap_weights(groups, args.boot, seed=1)
        t0 = time.perf_counter()
        ref = loop_ci(y, proba, W)
        t_loop = time.perf_counter() - t0
        diff = float(np.max(np.abs(np.array([lo, hi]) - ref)))
        print(f"{n:>7} {args.boot:>9} {t_loop:>15.2f} {t_ovf:>9.3f} {t_loop / t_ovf:>6.1f}x {diff:>11.1e}")


if __name__ == "__main__":
    main()
