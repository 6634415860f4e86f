"""The prediction task: which manifest column is the label, its classes, and how a binary task decides.

Everything downstream of the features (the classifiers, the metrics, DeLong, SHAP, the nomogram and the
decision curves) reads the task from here instead of assuming the three ASTLOF classes:

* ``astlof``: the three ASTLOF treatment classes (zhang2024, liu2025), column ``astlof_class``, codes 0-2;
  discrimination is the macro-averaged one-vs-rest AUC, threshold metrics use the class of highest
  probability.
* ``acuity``: acute (fresh) against chronic (old) fracture (zhang2023 on CT, guo2026 and li on X-ray),
  column ``acuity``, ``chronic`` = 0 and ``acute`` = 1 (the positive class: the fracture to treat);
  discrimination is the AUC of P(acute), threshold metrics (sensitivity, specificity, ...) call a vertebra
  acute when ``P(acute) >= threshold`` (:attr:`Task.threshold`, 0.5; pass it to
  :func:`ovfkit.metrics.bootstrap_metrics` and :func:`ovfkit.metrics.confusion`).

A predictions table holds one probability column per class, ``p0``, ``p1``, ... (:attr:`Task.proba_columns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Task:
    """A classification task over the manifest's vertebrae.

    Attributes
    ----------
    name : str
    column : str
        The manifest column holding the label.
    names : tuple of str
        Class names in code order (code ``k`` is ``names[k]``).
    values : tuple or None
        The column's value of each class in code order (``None``: the column holds the codes 0..C-1).
    threshold : float
        Binary tasks: a case is predicted positive (code 1) when ``P(code 1) >= threshold``.
    title : str
        How the book names the task.
    """

    name: str
    column: str
    names: tuple
    values: tuple | None = None
    threshold: float = 0.5
    title: str = ""

    @property
    def classes(self) -> tuple:
        """The class codes, ``(0, 1, ..., C-1)``."""
        return tuple(range(len(self.names)))

    @property
    def binary(self) -> bool:
        return len(self.names) == 2

    @property
    def proba_columns(self) -> list:
        """Probability columns of a predictions table, ``["p0", "p1", ...]``."""
        return [f"p{k}" for k in self.classes]

    @property
    def auc_name(self) -> str:
        """``"AUC"`` (binary: of the positive class) or ``"macro AUC"`` (one-vs-rest, averaged over classes)."""
        return "AUC" if self.binary else "macro AUC"

    @property
    def one_vs_rest(self) -> tuple:
        """The classes reported one against the rest: every class, or the positive class alone of a binary
        task (its class 0 is the same comparison mirrored)."""
        return self.classes[1:] if self.binary else self.classes

    @property
    def positive(self) -> str:
        """The positive class's name (binary tasks)."""
        return self.names[-1]

    def labels(self, manifest: pd.DataFrame) -> pd.Series:
        """The class code of every manifest row, int, indexed like ``manifest``.

        Raises ``ValueError`` naming the first rows whose value is missing or not one of the task's classes.
        """
        if self.column not in manifest.columns:
            raise ValueError(f"the manifest has no column {self.column!r}, the label of task {self.name!r}; "
                             f"add it (values: {', '.join(map(str, self.values or self.classes))})")
        col = manifest[self.column]
        if self.values is None:
            codes = pd.to_numeric(col, errors="coerce")
            ok = codes.isin(self.classes)
        else:
            codes = col.astype(str).str.strip().str.lower().map({str(v).lower(): k for k, v in enumerate(self.values)})
            ok = codes.notna()
        if not ok.all():
            bad = col[~ok]
            shown = ", ".join(f"{i!r}: {v!r}" for i, v in list(bad.items())[:5])
            allowed = self.values if self.values is not None else self.classes
            raise ValueError(f"column {self.column!r} of task {self.name!r} has {len(bad)} value(s) outside "
                             f"{list(allowed)} (row: value {shown}); correct or remove those rows")
        return codes.astype(int).rename(self.column)

TASKS = {
    "astlof": Task("astlof", "astlof_class", ("conservative", "augmentation or conservative",
                                              "augmentation or surgery"),
                   title="ASTLOF treatment class (three classes)"),
    "acuity": Task("acuity", "acuity", ("chronic", "acute"), values=("chronic", "acute"),
                   title="acute (fresh) vs chronic (old) fracture"),
}


def get_task(name: str | Task) -> Task:
    """The task called ``name`` (one of :data:`TASKS`); a :class:`Task` is returned as it is."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(f"task {name!r} is not one of {', '.join(TASKS)}")
    return TASKS[name]
