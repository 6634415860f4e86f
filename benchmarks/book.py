"""Wall time of `make book` cold and warm on this machine (targets: cold <= 45 min with the audit, warm <= 1 min).

Cold: an empty working folder (no cohort, no feature or model cache, no executed notebook); warm: the
same command again with nothing changed. The environment (.venv, MathJax) is assumed set up, as in the
targets. Prints both times and each chapter's execution time from the run's log.

    .venv/bin/python benchmarks/book.py [--profile default] [--keep]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_book(profile: str, build: Path, out: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(["make", "-C", str(REPO), "book", f"PROFILE={profile}", f"BUILD_DIR={build}",
                           f"OUT_DIR={out}"], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"make book failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovfkit-book-bench-"))
    try:
        cold, log = make_book(args.profile, work / "build", work / "out")
        warm, _ = make_book(args.profile, work / "build", work / "out")
        for part, chapter, secs in re.findall(r"\[ovfkit\] ([\w-]+)/(\S+): done in ([\d.]+) s", log):
            print(f"{part:>13} {chapter:<22} {float(secs):7.1f} s")
        print(f"make book ({args.profile}) cold: {cold / 60:.1f} min (target <= 45), "
              f"warm: {warm / 60:.2f} min (target <= 1)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
