"""Radiomics extraction throughput: PyRadiomics' own batch command line (serial) vs ovfkit.

Same 200 default-cohort X-ray cases, same settings (ovfkit/params/xray.yaml). Prints cases per second for
(a) `pyradiomics` batch mode with --jobs 1, (b) ovfkit on all cores with an empty cache, (c) ovfkit from
its cache, and the ratios b/a and c/a (targets on the 2-core machine: >= 1.7 and >= 50). Then, serially in one
process on images already read, PyRadiomics' extractor with its diagnostics (its default) against ovfkit's, which
skips them (:func:`ovfkit.radiomics.extract_case`), on those cases and on as many CT vertebral bodies with
``ct_volume`` and with its original image only: the ratio d (same values, checked). Last, serially, the
sensitivity study's variants of each modality's default file (:func:`ovfkit.transport.variants`), each case read
from disk: one extraction per variant (:func:`ovfkit.radiomics.extract_case`, each reading the case), against
:func:`ovfkit.radiomics.extract_shared` (each case read once, each shared image type and shape computed once):
the ratio e (same values, checked; target <= 0.85).

    .venv/bin/python benchmarks/radiomics.py [--cases 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file's name would shadow PyRadiomics' `radiomics` package: drop its folder from the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from ovfkit import radiomics, runner  # noqa: E402
from ovfkit.manifest import load_manifest  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    args = ap.parse_args()
    manifest = runner.ensure_cohort("xray", runner.REPO_ROOT / "build" / "default" / "data" / "xray", 42, None)
    m = load_manifest(manifest).iloc[: args.cases]
    n = len(m)
    work = Path(tempfile.mkdtemp(prefix="ovfkit-bench-"))
    try:
        settings = radiomics.load_settings("xray")
        settings.pop("ovfkit")
        params = work / "params.yaml"
        params.write_text(yaml.safe_dump(settings))
        batch = work / "batch.csv"
        pd.DataFrame({"ID": m["vertebra_id"], "Image": m["image"], "Mask": m["mask"]}).to_csv(batch, index=False)
        cli = Path(sys.executable).parent / "pyradiomics"
        t0 = time.perf_counter()
        subprocess.run([str(cli), str(batch), "-o", str(work / "out.csv"), "-f", "csv", "--param", str(params),
                        "--jobs", "1", "--verbosity", "1"], check=True, capture_output=True)
        a = time.perf_counter() - t0
        cache = work / "cache"
        t0 = time.perf_counter()
        first = radiomics.extract_manifest(m, "xray", n_jobs=-1, cache_dir=cache, progress=False)
        b = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = radiomics.extract_manifest(m, "xray", n_jobs=-1, cache_dir=cache, progress=False)
        c = time.perf_counter() - t0
        assert first.equals(again), "cached table differs from the computed one"
        ref = pd.read_csv(work / "out.csv").set_index("ID")
        diff = (ref.loc[first.index, first.columns].to_numpy(float) - first.to_numpy()) / (first.abs().to_numpy() + 1e-12)
        worst = float(abs(diff).max())
        assert worst < 1e-12, f"ovfkit's values differ from PyRadiomics' CLI by {worst:.2e} (relative)"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"cases: {n}, cores: {os.cpu_count()}, features per case: {first.shape[1]}; same values as the CLI "
          f"(max relative difference {worst:.1e}, its CSV's text rounding)")
    print(f"(a) pyradiomics batch CLI, serial : {n / a:8.2f} cases/s ({a:.1f} s)")
    print(f"(b) ovfkit, all cores, no cache   : {n / b:8.2f} cases/s ({b:.1f} s)")
    print(f"(c) ovfkit, from cache            : {n / c:8.2f} cases/s ({c:.2f} s)")
    print(f"ratio b/a: {a / b:.2f} (target >= 1.7)")
    print(f"ratio c/a: {a / c:.1f} (target >= 50)")
    ct = load_manifest(runner.ensure_cohort("ct", runner.REPO_ROOT / "build" / "default" / "data" / "ct", 42, None))
    original = {**radiomics.load_settings("ct_volume"), "imageType": {"Original": {}}}
    for name, cases, params in (("xray", m, "xray"), ("ct ct_volume", ct.iloc[: args.cases], "ct_volume"),
                                ("ct ct_volume, original image only", ct.iloc[: args.cases], original)):
        with_info, without = diagnostics_cost(cases, params)
        print(f"(d) {name}: PyRadiomics with diagnostics {with_info * 1000:.1f} ms/case, ovfkit without "
              f"{without * 1000:.1f} ms/case, ratio {with_info / without:.2f}")
    for modality, cases in (("xray", m), ("ct", ct)):
        separate, shared = sharing_gain(cases.iloc[: min(args.cases, 40)], modality)
        print(f"(e) {modality} sensitivity variants: one extraction per variant {separate * 1000:.0f} ms/case, "
              f"shared {shared * 1000:.0f} ms/case, ratio {shared / separate:.2f} (target <= 0.85)")


def sharing_gain(m: pd.DataFrame, modality: str) -> tuple[float, float]:
    """Seconds per case, serial, of the sensitivity study's variants extracted one by one (each reading the case)
    and together (:func:`ovfkit.radiomics.extract_shared`), alternating case by case; the values are checked."""
    from ovfkit import transport

    base = radiomics.default_params(modality)
    settings = [transport.variant_params(base, v) for v in transport.variants(modality, base)]
    seconds = {"separate": 0.0, "shared": 0.0}
    for _, r in m.iterrows():
        t0 = time.perf_counter()
        one = [radiomics.extract_case(r["image"], r["mask"], s) for s in settings]
        seconds["separate"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        shared = radiomics.extract_shared(r["image"], r["mask"], settings)
        seconds["shared"] += time.perf_counter() - t0
        for own, (feats, _, _) in zip(one, shared):
            pd.testing.assert_series_equal(feats, own, check_exact=True)
    return seconds["separate"] / len(m), seconds["shared"] / len(m)


def diagnostics_cost(m: pd.DataFrame, params) -> tuple[float, float]:
    """Seconds per case, serial, of PyRadiomics' extractor with its diagnostics and of ovfkit's without.

    ``params``: a shipped name or a settings dict; the two tables are checked to hold the same values.
    """
    import logging

    import SimpleITK as sitk
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    settings, roi = radiomics._split_settings(params)
    if roi != "volume":
        raise ValueError(f"{params}: the diagnostics benchmark takes whole-ROI files only, not roi={roi!r}")
    cases = [(sitk.ReadImage(r["image"]), sitk.ReadImage(r["mask"])) for _, r in m.iterrows()]
    theirs = featureextractor.RadiomicsFeatureExtractor(settings)
    runs = {"theirs": lambda i, k: theirs.execute(i, k), "ours": lambda i, k: radiomics.extract_case(i, k, settings)}
    seconds, last = {}, {}
    for name, run in runs.items():
        run(*cases[0])  # warm-up
        t0 = time.perf_counter()
        for i, k in cases:
            last[name] = run(i, k)
        seconds[name] = (time.perf_counter() - t0) / len(cases)
    ref = pd.Series({k: float(v) for k, v in last["theirs"].items() if not k.startswith("diagnostics_")})
    pd.testing.assert_series_equal(last["ours"].sort_index(), ref.sort_index(), check_exact=True)
    return seconds["theirs"], seconds["ours"]


if __name__ == "__main__":
    main()
