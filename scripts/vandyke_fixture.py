"""Convert MRMCaov's ``data/VanDyke.RData`` into ``tests/fixtures/readers/vandyke.csv``.

The Van Dyke et al. (1993) cine vs spin-echo MRI reader study ships with the R package MRMCaov
(https://github.com/brian-j-smith/MRMCaov, file ``data/VanDyke.RData``). This script reads that file
with a small reader of R's XDR serialization format (format version 2, the one the file uses), so
that neither R nor an R-file package is needed, and writes the columns ``reader, treatment, case,
truth, rating`` sorted by treatment, reader and case.

Usage::

    python scripts/vandyke_fixture.py path/to/VanDyke.RData [tests/fixtures/readers/vandyke.csv]
"""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd

NA_INTEGER = -(2**31)
_NIL, _REF, _GLOBALENV, _EMPTYENV, _BASEENV = 254, 255, 253, 242, 241
_SYM, _LIST, _CHAR, _LGL, _INT, _REAL, _STR, _VEC = 1, 2, 9, 10, 13, 14, 16, 19


class _XDR:
    """Reader of the R objects a saved data frame is made of (pairlists, atomic vectors, lists)."""

    def __init__(self, raw: bytes):
        self.raw, self.pos, self.refs = raw, 0, []

    def _take(self, n: int) -> bytes:
        out = self.raw[self.pos:self.pos + n]
        if len(out) != n:
            raise ValueError("VanDyke.RData ended early; fetch the file again from MRMCaov's data/ folder")
        self.pos += n
        return out

    def int(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def item(self):
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind in (_NIL, _GLOBALENV, _EMPTYENV, _BASEENV):
            return None
        if kind == _REF:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind == _SYM:
            name = self.item()
            self.refs.append(name)
            return name
        if kind == _LIST:
            if has_attr:
                self.item()  # a pairlist's own attributes: none that a data frame needs
            tag = self.item() if has_tag else None
            head = [(tag, self.item())]
            return head + (self.item() or [])
        if kind == _CHAR:
            n = self.int()
            return None if n == -1 else self._take(n).decode("utf-8")
        if kind in (_LGL, _INT, _REAL, _STR, _VEC):
            n = self.int()
            if kind in (_LGL, _INT):
                values = np.frombuffer(self._take(4 * n), dtype=">i4").astype(np.int64)
            elif kind == _REAL:
                values = np.frombuffer(self._take(8 * n), dtype=">f8").astype(float)
            else:
                values = [self.item() for _ in range(n)]
            attrs = dict(self.item()) if has_attr else {}
            return values, attrs
        raise ValueError(f"R object type {kind} is not handled by this converter; it reads data frames only")


def _column(values, attrs):
    """A data-frame column as a numpy array; factors become their labels."""
    if "levels" in attrs:
        labels = np.asarray(attrs["levels"][0], dtype=object)
        return labels[values - 1]
    return np.asarray(values)


def read_vandyke(path: Path) -> pd.DataFrame:
    """The ``VanDyke`` data frame stored in ``path`` (an ``.RData`` file)."""
    raw = gzip.decompress(path.read_bytes())
    if not raw.startswith(b"RDX2\nX\n"):
        raise ValueError(f"{path} is not a version-2 XDR .RData file; re-save it with save(version = 2)")
    xdr = _XDR(raw[len(b"RDX2\nX\n"):])
    xdr.int(), xdr.int(), xdr.int()  # format version, R version that wrote it, oldest R that reads it
    objects = dict(xdr.item())
    columns, attrs = objects["VanDyke"]
    names = attrs["names"][0]
    return pd.DataFrame({name: _column(*col) for name, col in zip(names, columns)})


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).parents[1] / "tests/fixtures/readers/vandyke.csv"
    frame = read_vandyke(Path(argv[1]))
    frame = frame[["reader", "treatment", "case", "truth", "rating"]].astype(int)
    frame = frame.sort_values(["treatment", "reader", "case"]).reset_index(drop=True)
    frame.to_csv(out, index=False)
    print(f"wrote {len(frame)} rows to {out}")


if __name__ == "__main__":
    main(sys.argv)
