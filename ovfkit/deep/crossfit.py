"""Deep features that never saw their own labels: the fine-tuned ResNet-50 is cross-fitted.

A network fine-tuned on the training rows and then asked for those same rows' features hands every
later step (LASSO's choice between deep and radiomics features, the nested CV, the choice of the best
classifier, the nomogram's DLR coefficient) features that already encode their own labels. Here the
training patients are split into K label-independent, patient-grouped folds; K networks are
fine-tuned, each on K-1 folds, and

* a **training** vertebra gets the features of the one network that did not train on its patient;
* a **held-out** vertebra (internal, external, prospective) gets the mean of the K networks' features.
  Why the mean rather than one more network fine-tuned on all training patients: it costs no extra
  fine-tuning, and it uses exactly the K networks whose features the training rows carry, so no network
  appears at test time that no training row came from. It relies on the K feature spaces being aligned
  (all K start from the same pretrained weights, and with K > 2 share most of their training patients;
  with K = 2 they share none); :attr:`DeepResult.agreement` measures that alignment on the held-out rows
  (each network against the mean of the others) and chapter 04 shows it.

The folds are drawn from patient ids alone (:class:`sklearn.model_selection.GroupKFold` with
shuffling), never from labels, so changing one training patient's labels cannot change which network
gives that patient its features, nor that network. The old, leaky behaviour (one network on all
training rows, whose features every row gets) stays reachable only as
``training_rows="in-sample"``, for the audit chapter that measures how much it inflates the scores.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ovfkit.deep.backbones import load_backbone
from ovfkit.deep.inputs import prepare_manifest
from ovfkit.deep.proxy import PROXIES, proxy_checkpoint, proxy_recipe
from ovfkit.deep.recipe import Recipe
from ovfkit.deep.training import Trunk, atomic_torch_save, finetune, predict, predict_from_trunk
from ovfkit.provenance import code_digest, json_digest
from ovfkit.task import get_task

#: ``cross-fitted`` (the default, honest) or ``in-sample`` (leaky, for the audit only).
TRAINING_ROWS = ("cross-fitted", "in-sample")


def crossfit_folds(groups: pd.Series, n_folds: int, seed: int) -> pd.Series:
    """Fold number (1..K) of every row, by patient, from patient ids alone (never from labels).

    Parameters
    ----------
    groups : Series, shape (n_rows,)
        Patient id per row (index: vertebra id).
    n_folds : int
        K >= 2; at most the number of patients.
    seed : int

    Returns
    -------
    Series of int, same index as ``groups``.
    """
    from sklearn.model_selection import GroupKFold

    n_patients = groups.nunique()
    if not 2 <= n_folds <= n_patients:
        raise ValueError(f"crossfit_folds={n_folds} needs 2 <= K <= the {n_patients} training patients; "
                         "lower the profile's crossfit_folds")
    fold = np.zeros(len(groups), dtype=int)
    cv = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(cv.split(np.zeros(len(groups)), groups=groups.to_numpy()), start=1):
        fold[test] = k
    return pd.Series(fold, index=groups.index, name="fold")


@dataclass
class DeepResult:
    """Deep features of every vertebra and how they were made.

    Attributes
    ----------
    features : DataFrame, shape (n_vertebrae, 2048)
        Columns ``deep_0000``..., index vertebra id, in the manifest's order.
    history : DataFrame
        One row per network and epoch (``network``: ``fold 1``..``fold K``, or ``all`` in-sample).
    folds : Series
        Training vertebra -> the fold whose network gave its features (empty in-sample).
    agreement : DataFrame
        Per network: median over the 2048 features of the Pearson correlation, on the held-out rows,
        between that network's feature and the mean over networks (1.0 = identical feature spaces).
    """

    features: pd.DataFrame
    history: pd.DataFrame
    folds: pd.Series
    agreement: pd.DataFrame
    backbone: str
    weights: str
    recipe: Recipe
    task: str
    training_rows: str
    model_paths: list
    inputs: pd.Series
    seconds: float

    def load_models(self) -> list:
        """The fine-tuned networks (K cross-fitted, or the one in-sample), in evaluation mode."""
        import torch
        from torchvision.models import resnet50

        out = []
        for path in self.model_paths:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = resnet50(weights=None, num_classes=int(state["fc.weight"].shape[0]))
            model.load_state_dict(state)
            out.append(model.eval())
        return out


def _input_hashes(inputs: pd.Series, rows) -> list:
    return [(str(k), hashlib.sha256(np.ascontiguousarray(inputs.loc[k]).tobytes()).hexdigest()[:16]) for k in rows]


def _network(run_root: Path, name: str, backbone: str, weights, recipe: Recipe, inputs: pd.Series,
             labels: pd.Series, groups: pd.Series, n_classes: int, cache_dir: Path, progress: bool, trunk=None):
    """Fine-tune (or load from its cache) one network on ``labels.index``; return (model, history, path).

    Its folder is keyed by everything the network depends on: its training rows' inputs, labels and
    patients, the class count, the recipe, the backbone's weights and the code.
    """
    import torch
    from torchvision.models import resnet50

    from ovfkit.manifest import write_csv_atomic

    key = json_digest({"inputs": _input_hashes(inputs, labels.index), "labels": labels.astype(int).tolist(),
                       "groups": groups.loc[labels.index].astype(str).tolist(), "n_classes": n_classes})
    run = run_root / f"net-{key}"
    model_path, hist_path = run / "model.pt", run / "history.csv"
    if not model_path.exists():
        model = load_backbone(backbone, weights, cache_dir=cache_dir / "proxy", seed=recipe.seed,
                              proxy=proxy_recipe(recipe))
        tuned = finetune(model, inputs.loc[labels.index], labels, groups.loc[labels.index], recipe,
                         n_classes=n_classes, checkpoint_dir=run / "checkpoints", progress=progress, trunk=trunk)
        write_csv_atomic(tuned.history, hist_path)
        atomic_torch_save(tuned.model.state_dict(), model_path)  # last: its presence marks a finished network
    model = resnet50(weights=None, num_classes=n_classes)
    model.load_state_dict(torch.load(model_path, map_location="cpu", weights_only=True))
    return model.eval(), pd.read_csv(hist_path).assign(network=name), model_path


AGREEMENT = "median feature correlation with the other networks"


def _agreement(per_network: list, names: list) -> pd.DataFrame:
    """Median per-feature correlation of each network with the mean of the other networks, on the same rows.

    Against the others, not the mean of all: a mean that includes the network itself correlates with it
    by construction (about 0.71 for two unrelated networks).
    """
    rows = []
    for i, (name, f) in enumerate(zip(names, per_network)):
        others = np.mean([g for j, g in enumerate(per_network) if j != i], axis=0)
        a, b = f - f.mean(0), others - others.mean(0)
        denom = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
        r = np.divide((a * b).sum(0), denom, out=np.full(denom.shape, np.nan), where=denom > 0)
        rows.append({"network": name, AGREEMENT: float(np.nanmedian(r))})
    return pd.DataFrame(rows)


def deep_features(manifest: pd.DataFrame, backbone: str, recipe: Recipe, *, weights=None, cache_dir,
                  task="astlof", training_rows: str = "cross-fitted", progress: bool = True,
                  n_jobs: int = -1) -> DeepResult:
    """Fine-tune ResNet-50s from ``backbone`` on the training cohort; 2048-D features of every vertebra.

    Parameters
    ----------
    manifest : DataFrame
        One modality; ``cohort == "train"`` rows are the only ones whose labels any network sees.
    backbone : one of :data:`ovfkit.deep.SOURCES`
    recipe : Recipe
        ``recipe.crossfit_folds`` networks are fine-tuned (see the module's docstring).
    weights : path, optional
        Weights file of ``imagenet`` or ``radimagenet``.
    cache_dir : path
        Inputs, proxy backbones, checkpoints (an interrupted run resumes from the last epoch), networks
        and features, each keyed by content, settings and code.
    task : str or Task
        The label the networks learn (:mod:`ovfkit.task`: ``astlof``, three classes; ``acuity``, binary).
    training_rows : {"cross-fitted", "in-sample"}
        ``in-sample`` fine-tunes one network on all training rows and gives every row its features: the
        training rows' features then encode their own labels. It exists only for the audit of that leak.

    Returns
    -------
    DeepResult
    """
    if training_rows not in TRAINING_ROWS:
        raise ValueError(f"training_rows={training_rows!r} is not one of {TRAINING_ROWS}")
    if len(set(manifest["modality"])) != 1:
        raise ValueError("deep_features needs a single-modality manifest")
    task = get_task(task)
    cache_dir = Path(cache_dir)
    t0 = time.perf_counter()
    inputs = prepare_manifest(manifest, recipe, cache_dir=cache_dir / "inputs", n_jobs=n_jobs)
    train = manifest.index[manifest["cohort"] == "train"]
    if len(train) == 0:
        raise ValueError("no training rows (cohort == 'train') to fine-tune on")
    labels = task.labels(manifest.loc[train])
    groups = manifest["patient_id"].astype(str)
    n_classes = len(task.classes)
    if weights is not None:
        from ovfkit.provenance import file_hash

        wkey = file_hash(weights)[:16]
    elif backbone in PROXIES:
        wkey = Path(proxy_checkpoint(backbone, cache_dir=cache_dir / "proxy", seed=recipe.seed,
                                     recipe=proxy_recipe(recipe), progress=progress)).stem
    else:
        wkey = "default"
    run_root = cache_dir / f"{backbone}-{wkey}-{recipe.key()}-{code_digest(__name__)}"
    held_out = manifest.index.difference(train, sort=False)
    if training_rows == "in-sample":
        folds = pd.Series(dtype=int, name="fold")
        plan = [("all", train, manifest.index)]  # (network, rows it trains on, rows it alone gives features)
        shared = held_out[:0]
    else:
        folds = crossfit_folds(groups.loc[train], recipe.crossfit_folds, recipe.seed)
        plan = [(f"fold {k}", train[folds.to_numpy() != k], train[folds.to_numpy() == k])
                for k in range(1, recipe.crossfit_folds + 1)]
        shared = held_out  # rows that get the mean over the networks
    final_key = json_digest({"plan": [(n, list(map(str, fit)), list(map(str, own))) for n, fit, own in plan],
                             "inputs": _input_hashes(inputs, manifest.index), "labels": labels.tolist(),
                             "groups": groups.loc[train].tolist(), "mode": training_rows,
                             "task": task.name, "n_classes": n_classes})
    feats_path = run_root / f"features-{final_key}.parquet"
    agree_path, hist_path = feats_path.with_suffix(".agreement.csv"), feats_path.with_suffix(".history.csv")
    paths_path = feats_path.with_suffix(".networks.json")
    if not feats_path.exists():
        from ovfkit.atomic import atomic_output
        from ovfkit.manifest import write_csv_atomic

        histories, paths, parts, per_network = [], [], [], []
        # The frozen front of the pretrained network, once for all K networks (None when all layers train).
        trunk = Trunk.compute(load_backbone(backbone, weights, cache_dir=cache_dir / "proxy", seed=recipe.seed,
                                            proxy=proxy_recipe(recipe)), inputs, recipe, flip_ids=train)
        for name, fit_rows, own_rows in plan:
            model, hist, path = _network(run_root, name, backbone, weights, recipe, inputs, labels.loc[fit_rows],
                                         groups, n_classes, cache_dir, progress, trunk)
            histories.append(hist)
            paths.append(str(path.relative_to(run_root)))
            rows = own_rows.append(shared)
            f = predict(model, np.stack(inputs.loc[rows].to_numpy()), recipe.scaling, features=True) \
                if trunk is None else predict_from_trunk(model, trunk, list(rows), features=True)
            parts.append(pd.DataFrame(f[: len(own_rows)], index=own_rows))
            per_network.append(f[len(own_rows):])
        if len(shared):
            parts.append(pd.DataFrame(np.mean(per_network, axis=0), index=shared))
        table = pd.concat(parts)
        table = table.loc[manifest.index]
        table.columns = [f"deep_{i:04d}" for i in range(table.shape[1])]
        agreement = _agreement(per_network, [p[0] for p in plan]) if len(shared) \
            else pd.DataFrame(columns=["network", AGREEMENT])
        write_csv_atomic(pd.concat(histories, ignore_index=True), hist_path)
        write_csv_atomic(agreement, agree_path)
        with atomic_output(paths_path) as tmp:
            tmp.write_text(json.dumps(paths), encoding="utf-8")
        with atomic_output(feats_path) as tmp:  # last: its presence marks a finished step
            table.to_parquet(tmp)
    return DeepResult(pd.read_parquet(feats_path), pd.read_csv(hist_path), folds, pd.read_csv(agree_path),
                      backbone, wkey, recipe, task.name, training_rows,
                      [run_root / p for p in json.loads(paths_path.read_text(encoding="utf-8"))], inputs,
                      time.perf_counter() - t0)
