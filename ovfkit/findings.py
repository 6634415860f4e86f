"""What the data show, in words: the "What we found" boxes, written from a run's own tables.

Every sentence is computed from the CSV tables a chapter writes beside its figures (``output_dir``), so
the same functions end each chapter and fill the results and clinical pages, and no number in them is
typed by hand. Each function takes the tables as DataFrames and returns a list of sentences (Markdown);
a table that is missing or empty gives no sentence rather than a wrong one. :func:`box` wraps them as a
MyST admonition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ovfkit.fusion import NO_COMBAT
from ovfkit.settings import HELD_OUT
from ovfkit.tables import format_p

TITLE = "What we found"
ALPHA = 0.05


def box(sentences: list[str], title: str = TITLE) -> str:
    """A MyST admonition (class ``important``) with one bullet per sentence; a sentence saying that
    nothing could be computed when ``sentences`` is empty."""
    body = "\n".join(f"- {s}" for s in sentences) if sentences else "- Nothing could be computed from this run's tables."
    return f"```{{admonition}} {title}\n:class: important\n\n{body}\n```"


def read(figures_dir, name: str) -> pd.DataFrame:
    """The table ``name`` a chapter wrote into ``figures_dir`` (empty when it is not there)."""
    path = Path(figures_dir) / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def auc_text(estimate, low, high) -> str:
    """"0.812 (95% CI 0.741-0.874)"; "not computable" for a missing estimate."""
    if estimate is None or pd.isna(estimate):
        return "not computable"
    if pd.isna(low) or pd.isna(high):
        return f"{estimate:.3f} (no CI)"
    return f"{estimate:.3f} (95% CI {low:.3f}-{high:.3f})"


def auc_column(df: pd.DataFrame) -> str:
    """The headline AUC's column of a score table: ``macro_auc`` (three classes) or ``auc`` (binary)."""
    return "macro_auc" if "macro_auc" in df.columns else "auc"


def _metric_name(df: pd.DataFrame) -> str:
    return "macro AUC" if auc_column(df) == "macro_auc" else "AUC"


def _held_out(df: pd.DataFrame) -> list[str]:
    return [c for c in HELD_OUT if c in set(df["cohort"])]


def cohort_findings(class_mix: pd.DataFrame, baseline: pd.DataFrame) -> list[str]:
    """Cohort sizes and the rarest class (``class_mix_by_cohort``), and chapter 01's plain radiomics
    baseline per held-out cohort (``baseline_auc``)."""
    out = []
    if len(class_mix):
        label = [c for c in class_mix.columns if c not in ("cohort", "n")][0]
        total = class_mix.groupby(label)["n"].sum()
        rarest = total.idxmin()
        out.append(f"{int(total.sum())} vertebrae in {class_mix['cohort'].nunique()} cohorts; the rarest class is "
                   f"**{rarest}** ({int(total[rarest])} vertebrae, {total[rarest] / total.sum():.0%}), so every "
                   f"number about it rests on the fewest cases.")
        empty = class_mix[class_mix["n"] == 0]
        for _, r in empty.iterrows():
            out.append(f"The {r['cohort']} cohort has no vertebra of class {r[label]}: its one-vs-rest AUC there "
                       "cannot be computed.")
    if len(baseline):
        col, name = auc_column(baseline), _metric_name(baseline)
        parts = [f"{r['cohort']} {auc_text(r[col], r['ci_low'], r['ci_high'])}" for _, r in baseline.iterrows()]
        out.append(f"The plain radiomics baseline (logistic regression) reaches a {name} of " + "; ".join(parts) +
                   ": the bar that every later model has to clear.")
    return out


def agreement_findings(agreement: pd.DataFrame) -> list[str]:
    """Reader agreement per ASTLOF component (``reader_agreement``): the range of kappa and the weakest."""
    if agreement.empty:
        return []
    low = agreement.loc[agreement["kappa"].idxmin()]
    high = agreement.loc[agreement["kappa"].idxmax()]
    return [f"Two readers agree with weighted kappa from {low['kappa']:.2f} ({low['component']}, 95% CI "
            f"{low['ci_low']:.2f}-{low['ci_high']:.2f}) to {high['kappa']:.2f} ({high['component']}) on "
            f"{int(low['n'])} vertebrae: the label the models learn is itself uncertain, most for "
            f"{low['component']}."]


def radiomics_findings(icc: pd.DataFrame, center_effect: pd.DataFrame, threshold: float) -> list[str]:
    """How many features pass the ICC filter (``feature_icc``: its last column is the ICC the filter uses;
    ``inter`` and ``intra`` columns, when present, say which comparisons made it) and how many differ
    between centers before and after ComBat (``center_effect``)."""
    out = []
    values = icc.iloc[:, -1].dropna() if len(icc) else icc
    if len(values):
        kept = int((values >= threshold).sum())
        who = ("by a second reader and by the same reader outlining again" if {"inter", "intra"} <= set(icc.columns)
               and icc["intra"].notna().any() else "by a second reader")
        out.append(f"{kept} of {len(values)} features ({kept / len(values):.0%}) are reproduced {who} "
                   f"(ICC >= {threshold}) and go forward.")
    if len(center_effect):
        before, after = int(center_effect["before"].sum()), int(center_effect["after"].sum())
        out.append(f"Features that differ between centers (Kruskal-Wallis, Benjamini-Hochberg adjusted p < 0.05): "
                   f"{before} of {len(center_effect)} before ComBat, {after} after "
                   f"({'fewer' if after < before else 'not fewer'}).")
    return out


def probe_findings(probe: pd.DataFrame) -> list[str]:
    """The linear probe of each backbone's deep features per held-out cohort (``linear_probe_auc``)."""
    if probe.empty:
        return []
    col, name = auc_column(probe), _metric_name(probe)
    out = []
    for cohort in _held_out(probe):
        rows = probe[probe["cohort"] == cohort].dropna(subset=[col])
        if len(rows) < 2:
            continue
        best, worst = rows.loc[rows[col].idxmax()], rows.loc[rows[col].idxmin()]
        overlap = best["ci_low"] <= worst["ci_high"]
        out.append(f"{cohort}: the deep features alone reach a {name} of {auc_text(best[col], best['ci_low'], best['ci_high'])} "
                   f"with {best['backbone']} and {auc_text(worst[col], worst['ci_low'], worst['ci_high'])} with "
                   f"{worst['backbone']}; the intervals {'overlap' if overlap else 'do not overlap'}.")
    return out


def fusion_findings(fusion_auc: pd.DataFrame, radiomics: str = "radiomics") -> list[str]:
    """Per held-out cohort, the best variant with deep features and where radiomics alone stands, by
    point estimate (``fusion_auc``; the ``no ComBat`` twins are left out: they are chapter 06's
    sensitivity analysis). The first sentence is the verdict over the cohorts where both were computed."""
    if fusion_auc.empty:
        return []
    col, name = auc_column(fusion_auc), _metric_name(fusion_auc)
    out, matches, missing = [], [], []
    rows_all = fusion_auc[~fusion_auc["variant"].astype(str).str.endswith(NO_COMBAT)]
    for cohort in _held_out(rows_all):
        rows = rows_all[rows_all["cohort"] == cohort].dropna(subset=[col])
        rad = rows[rows["variant"] == radiomics]
        others = rows[rows["variant"] != radiomics]
        if rad.empty or others.empty:
            missing.append(cohort)
            continue
        r, best = rad.iloc[0], others.loc[others[col].idxmax()]
        diff = r[col] - best[col]
        matches.append(diff >= 0)
        out.append(f"{cohort}: radiomics alone {auc_text(r[col], r['ci_low'], r['ci_high'])}, best variant with "
                   f"deep features ({best['variant']}) {auc_text(best[col], best['ci_low'], best['ci_high'])}; "
                   "radiomics alone is " + (f"{'ahead' if diff > 0 else 'behind'} by {abs(diff):.3f}." if diff
                                            else "level with it."))
    gap = f" ({name} not computable on {', '.join(missing)})" if missing else ""
    if matches:
        verdict = ("matches or beats every variant with deep features" if all(matches) else
                   f"is behind a variant with deep features on {len(matches) - sum(matches)}")
        where = ("on every held-out cohort where both could be computed" if all(matches) else
                 f"of {len(matches)} held-out cohorts where both could be computed")
        out.insert(0, f"With the same classifier (logistic regression), radiomics alone {verdict} {where}{gap}, by "
                      "point estimate (the paired tests are in chapter 07).")
    elif missing:
        out.append(f"The variants cannot be compared on any held-out cohort{gap}.")
    return out


def model_findings(versus: pd.DataFrame, scores: pd.DataFrame, baseline: pd.DataFrame) -> list[str]:
    """The chosen model per backbone on every held-out cohort against chapter 01's baseline
    (``versus_papers`` names the chosen models, ``model_scores`` holds their scores)."""
    if versus.empty or scores.empty:
        return []
    col, name = auc_column(scores), _metric_name(scores)
    out = []
    base = baseline.set_index("cohort") if len(baseline) else pd.DataFrame()
    chosen = versus[["ovfkit backbone", "ovfkit model"]].drop_duplicates()
    for _, c in chosen.iterrows():
        rows = scores[(scores["variant"] == f"early {c['ovfkit backbone']}") & (scores["model"] == c["ovfkit model"])]
        parts = []
        for cohort in _held_out(rows):
            r = rows[rows["cohort"] == cohort].iloc[0]
            text = f"{cohort} {auc_text(r[col], r['ci_low'], r['ci_high'])}"
            bcol = auc_column(baseline) if len(baseline) else None
            if bcol == col and cohort in base.index and pd.notna(base.loc[cohort, bcol]) and pd.notna(r[col]):
                b = base.loc[cohort]
                text += (f", {'above' if r[col] > b[col] else 'below' if r[col] < b[col] else 'level with'} the "
                         f"baseline's {auc_text(b[col], b['ci_low'], b['ci_high'])}")
            parts.append(text)
        out.append(f"{c['ovfkit model']} on early fusion with {c['ovfkit backbone']} (chosen by training nested CV), "
                   f"{name}: " + "; ".join(parts) + ".")
    if out and len(baseline):
        out.append("The baseline is chapter 01's plain L2 logistic regression on the original-image radiomics "
                   "features (no ICC filter, ComBat, LASSO or deep features); above and below compare point "
                   "estimates, not a paired test.")
    return out


def bedside(task) -> dict:
    """The classes :func:`translation_findings` speaks of for a task: ASTLOF's class 2 (augmentation or
    surgery) and the conservative class 0 a missed case would be managed as; a binary task's positive
    class (every miss of it is called negative, so nothing more is said)."""
    if task.binary:
        return {"critical": 1, "critical_name": task.names[1], "fallback": None, "fallback_name": None}
    return {"critical": 2, "critical_name": "class-2 (augmentation or surgery)", "fallback": 0,
            "fallback_name": "conservative care (class 0)"}


def translation_findings(confusion: pd.DataFrame, critical: int, critical_name: str, fallback: int | None,
                         fallback_name: str | None) -> list[str]:
    """What the chosen model's predictions mean at the bedside, per held-out cohort (``confusion``:
    true, predicted, n, cohort, and the ``variant`` and ``model`` it belongs to when recorded):
    accuracy, the sensitivity for the ``critical`` class, and how many of its vertebrae the model would
    manage as the ``fallback`` class (:func:`bedside` names them)."""
    if confusion.empty:
        return []
    who = ""
    if {"variant", "model"} <= set(confusion.columns):
        who = f"{confusion['model'].iloc[0]} on {confusion['variant'].iloc[0]}, "
    out = []
    for cohort in _held_out(confusion):
        c = confusion[confusion["cohort"] == cohort]
        total = int(c["n"].sum())
        if total == 0:
            continue
        correct = int(c.loc[c["true"] == c["predicted"], "n"].sum())
        text = f"{who}{cohort}: accuracy {correct / total:.0%} ({correct}/{total})"
        s = c[c["true"] == critical]
        n_s = int(s["n"].sum())
        if n_s:
            hit = int(s.loc[s["predicted"] == critical, "n"].sum())
            text += f"; sensitivity for {critical_name} vertebrae {hit / n_s:.0%} ({hit}/{n_s})"
            if fallback is not None:
                sent = int(s.loc[s["predicted"] == fallback, "n"].sum())
                text += f", and {sent} of them would be managed as {fallback_name}"
        else:
            text += f"; no {critical_name} vertebra in this cohort"
        out.append(text + ".")
    return out


def _correction(p_col: str) -> str:
    return {"p_holm": "Holm's correction", "p_bh": "Benjamini-Hochberg correction"}.get(p_col, "no correction")


def _cohort_label(cohort: str) -> str:
    return "train (nested CV)" if cohort == "train" else cohort


def domain_findings(domain: pd.DataFrame, title: str = "") -> list[str]:
    """The paired tests of the two pretraining domains (``delong_domain`` or ``delong_domain_chosen``:
    the headline rows, ``class`` ``macro`` or ``auc``), with the correction the table carries."""
    if domain.empty:
        return []
    headline = domain["class"].astype(str).isin(["macro", "auc"])
    rows = (domain[headline] if headline.any() else domain).dropna(subset=["p"])
    if rows.empty:
        return [f"{title}no paired domain test could be computed."]
    p_col = next((c for c in ("p_holm", "p_bh") if c in rows and rows[c].notna().any()), "p")
    label = {"p_holm": "Holm-adjusted p", "p_bh": "BH-adjusted p"}.get(p_col, "p")
    significant = rows[rows[p_col] < ALPHA]
    a, b = rows["a"].iloc[0], rows["b"].iloc[0]
    detail = "; ".join(f"{_cohort_label(r['cohort'])} {r['diff']:+.3f} (95% CI {r['ci_low']:+.3f} to "
                       f"{r['ci_high']:+.3f}, {label} {format_p(r[p_col])})" for _, r in rows.iterrows())
    if p_col == "p":
        verdict = f"{len(significant)} of {len(rows)} differences have p < 0.05 (no correction)"
    else:
        verdict = ("no difference between the pretraining domains survives " + _correction(p_col)
                   if significant.empty else f"{len(significant)} of {len(rows)} differences survive "
                                             + _correction(p_col))
    return [f"{title}{a} minus {b}: {detail}; {verdict}."]


def comparison_findings(tests: pd.DataFrame, p_col: str = "p_bh") -> list[str]:
    """How many of the paired fusion comparisons (``delong_fusion``) stay below 0.05 after correction."""
    rows = tests[tests["class"].astype(str).isin(["macro", "auc"])] if len(tests) else tests
    rows = rows.dropna(subset=["p"]) if len(rows) else rows
    if rows.empty:
        return []
    if p_col not in rows:
        p_col = "p"
    sig = rows[rows[p_col] < ALPHA]
    text = (f"{len(sig)} of {len(rows)} paired comparisons of early fusion with a single source stay below 0.05 "
            f"({_correction(p_col)})")
    if len(sig):
        text += ": " + "; ".join(f"{r['a']} vs {r['b']} on {r['cohort']} ({r['diff']:+.3f})" for _, r in sig.iterrows())
    return [text + "."]


def shap_findings(importance: pd.DataFrame, top: int = 10) -> list[str]:
    """The features the chosen model leans on most (``shap_importance``: mean |SHAP| per class on the
    explained cohort, summed over classes)."""
    if importance.empty:
        return []
    head = importance.sort_values("all classes", ascending=False).head(top)
    deep = head["family"].astype(str).str.startswith("deep").sum()
    first = ", ".join(f"`{f}`" for f in head["feature"].head(3))
    return [f"By mean |SHAP| summed over classes, the three most influential features are {first}; {deep} of "
            f"the top {len(head)} are deep features and {len(head) - deep} radiomics features."]


def clinical_findings(discrimination: pd.DataFrame, curves: pd.DataFrame) -> list[str]:
    """Whether age and sex add to the DLR score (``nomogram_discrimination``) and where the combined
    model's decision curve lies above treating all and treating none (``decision_curves``)."""
    out = []
    if len(discrimination):
        d = discrimination.dropna(subset=["difference"])
        p_col = "p_holm" if "p_holm" in d else "DeLong p"
        sig = d[d[p_col] < ALPHA]
        out.append(f"Adding age and sex to the DLR score changes the held-out AUC by {d['difference'].min():+.3f} to "
                   f"{d['difference'].max():+.3f} over {len(d)} class-by-cohort comparisons (DeLong); "
                   f"{len(sig)} stay below 0.05 ({_correction(p_col) if p_col == 'p_holm' else 'no correction'}).")
    if len(curves):
        for cls, g in curves.groupby("cls"):
            model = g[g["model"] == "combined"].set_index("threshold")["net_benefit"]
            alls = g[g["model"] == "all"].set_index("threshold")["net_benefit"] if (g["model"] == "all").any() else None
            if model.empty:
                continue
            best_other = np.maximum(alls.reindex(model.index).fillna(0).to_numpy(), 0) if alls is not None else 0
            useful = model.index[model.to_numpy() > best_other]
            if len(useful):
                out.append(f"Class {cls}, held-out cohorts pooled: the combined model's net benefit is above treating "
                           f"all and treating none at {len(useful)} of {len(model)} threshold probabilities (lowest "
                           f"{useful.min():.2f}, highest {useful.max():.2f}).")
            else:
                out.append(f"Class {cls}, held-out cohorts pooled: the combined model's net benefit is never above "
                           "treating all or none.")
    return out


def discordant_findings(cases: pd.DataFrame, n_compared: int, a: str, b: str) -> list[str]:
    """Sentences on the vertebrae two models grade differently (:func:`ovfkit.study.discordant_cases`).

    Parameters
    ----------
    cases : DataFrame
        The discordant vertebrae, the case shown first.
    n_compared : int
        Held-out vertebrae both models predicted.
    a, b : str
        The two models in words (e.g. "RadImageNet stand-in: RF on early proxy-medical"); the sentences
        call them A and B.
    """
    if n_compared == 0:
        return ["No held-out vertebra was predicted by both models, so no case can be compared."]
    if cases.empty:
        return [f"{a} and {b} grade all {n_compared} held-out vertebrae alike: there is no discordant case to show."]
    counts = cases["outcome"].value_counts()
    parts = [f"A right and B wrong on {counts.get('a right, b wrong', 0)}",
             f"B right and A wrong on {counts.get('b right, a wrong', 0)}",
             f"both wrong on {counts.get('both wrong', 0)}"]
    first = cases.iloc[0]
    return [f"A ({a}) and B ({b}) grade {len(cases)} of {n_compared} held-out vertebrae differently: "
            + ", ".join(parts) + ".",
            f"The case below is {cases.index[0]} ({_cohort_label(first['cohort'])} cohort, true class {first['y']}): "
            f"A predicts class {first['pred_a']} (probability of the true class {first['p_true_a']:.2f}), "
            f"B predicts class {first['pred_b']} ({first['p_true_b']:.2f})."]



def difficulty_sentence(baseline: pd.DataFrame, ceiling: float = 0.95) -> str | None:
    """Whether a plain baseline's test AUC makes the task informative: its 95% CI clearly above 0.5 and its
    estimate and CI below ``ceiling`` (else the task is too easy to compare models on)."""
    if not len(baseline):
        return None
    b = baseline.iloc[0]
    text = f"A plain radiomics logistic regression reaches a test AUC of {auc_text(b['auc'], b['ci_low'], b['ci_high'])}"
    if pd.isna(b["ci_low"]):
        return text + "."
    if b["ci_low"] <= 0.5:
        return text + ": its CI reaches chance, so this cohort is too small or too hard to compare models on."
    if b["ci_high"] >= ceiling:
        return text + f": its CI reaches {ceiling}, so the task may be too easy to tell better models apart."
    return text + ": clearly above chance and clearly below perfect, room for better models to show."


def acute_chronic_findings(aucs: pd.DataFrame, delong: pd.DataFrame, baseline: pd.DataFrame) -> list[str]:
    """The acute-vs-chronic study (zhang2023) in words: the baseline's difficulty, each model's test AUC
    beside the paper's, and the paired DeLong tests on the test set.

    Parameters
    ----------
    aucs : DataFrame
        Chapter 04's ``model_aucs``: ``model``, ``cohort`` (``training``/``test``), ``auc``, ``ci_low``,
        ``ci_high``, ``paper_auc``.
    delong : DataFrame
        Chapter 04's ``delong``: ``cohort``, ``a``, ``b``, ``difference``, ``p``, ``p (Holm)``.
    baseline : DataFrame
        Chapter 01's ``baseline_auc`` (``cohort``, ``auc``, ``ci_low``, ``ci_high``).
    """
    out = [t for t in [difficulty_sentence(baseline)] if t]
    test = aucs[aucs["cohort"] == "test"] if len(aucs) else aucs
    d = delong[delong["cohort"] == "test"] if len(delong) else delong
    if len(test):
        parts = [f"{r['model']} {auc_text(r['auc'], r['ci_low'], r['ci_high'])} (paper {r['paper_auc']:.3f})"
                 for _, r in test.iterrows()]
        top = test[test["auc"] >= test["auc"].max() - 1e-12]["model"].tolist()
        text = "Test AUC of the four models: " + "; ".join(parts) + ". "
        text += (f"The highest point estimate is {top[0]}'s" if len(top) == 1
                 else f"{' and '.join(top)} share the highest point estimate")
        if len(d):
            text += ("; no pair of models differs after Holm's correction, so the data do not rank them."
                     if (d["p (Holm)"] >= ALPHA).all() else ".")
        else:
            text += "."
        out.append(text)
    if len(d):
        sig = d[d["p (Holm)"] < ALPHA]
        named = "; ".join(f"{r['a']} vs {r['b']} (difference {r['difference']:+.3f}, Holm-adjusted p "
                          f"{format_p(r['p (Holm)'])})" for _, r in sig.iterrows())
        text = (f"Paired DeLong tests on the test set: {len(sig)} of {len(d)} pairs differ after Holm's correction"
                + (f" ({named})" if len(sig) else "") + ".")
        if "paper P" in d.columns:
            lost = d[(d["paper P"].astype(str) == "< 0.05") & (d["p (Holm)"] >= ALPHA)]
            if len(lost):
                pairs = [f"{r['a']} vs {r['b']}" for _, r in lost.iterrows()]
                named = pairs[0] if len(pairs) == 1 else ", ".join(pairs[:-1]) + " and " + pairs[-1]
                text += (f" Not reproduced: the paper found {named} significant (P < 0.05); here "
                         f"{'it is' if len(pairs) == 1 else 'they are'} not, after Holm's correction.")
        fn = d[[{a, b} == {"fusion", "nomogram"} for a, b in zip(d["a"], d["b"])]]
        if len(fn):
            r = fn.iloc[0]
            text += (f" Fusion against the nomogram: difference {r['difference']:+.3f}, unadjusted DeLong p "
                     f"{format_p(r['p'])} (the paper: P = 0.668).")
        out.append(text)
    return out


def calibration_sentence(cal: pd.DataFrame) -> str | None:
    """The calibration of a binary model in words, from a one-row table with ``slope``, ``slope_low``,
    ``slope_high``, ``intercept``, ``intercept_low``, ``intercept_high``, ``brier``, ``HL statistic``, ``HL df``
    and ``HL p`` (chapter 04 of the acute-vs-chronic part)."""
    if not len(cal):
        return None
    c = cal.iloc[0]
    way = ("below 1 (predictions too extreme)" if c["slope"] < 1
           else "above 1 (predictions too moderate, closer to the average than the outcomes are)")
    if c["slope_high"] < 1 or c["slope_low"] > 1:
        slope = f"{way}, and its CI excludes 1"
    else:
        slope = f"{way}, but its CI includes 1: no clear miscalibration of the spread on {int(c['n'])} fractures"
    if c["intercept_high"] < 0:
        intercept = "below 0: it predicts acute fractures too often"
    elif c["intercept_low"] > 0:
        intercept = "above 0: it predicts acute fractures too rarely"
    else:
        intercept = "its CI includes 0"
    return (f"Calibration slope {c['slope']:.2f} (95% CI {c['slope_low']:.2f} to {c['slope_high']:.2f}), {slope}; "
            f"calibration intercept {c['intercept']:.2f} (95% CI {c['intercept_low']:.2f} to "
            f"{c['intercept_high']:.2f}), {intercept}; Brier score {c['brier']:.3f}; Hosmer-Lemeshow "
            f"{c['HL statistic']:.2f} on {int(c['HL df'])} df, p {format_p(c['HL p'])}.")


def train_test_gap(aucs: pd.DataFrame, outer_splits: int) -> str | None:
    """How each model's test AUC compares with its training (nested-CV) AUC, with the two reasons that can
    make the test AUC the higher one. ``aucs``: ``model``, ``cohort`` (``training``/``test``), ``auc``."""
    if not len(aucs):
        return None
    wide = aucs.pivot(index="model", columns="cohort", values="auc")
    gap = (wide["test"] - wide["training"]).reindex(aucs["model"].drop_duplicates())
    parts = ", ".join(f"{m} {d:+.3f}" for m, d in gap.items())
    text = f"Test minus training AUC: {parts}."
    if (gap > 0).all():
        test = aucs[aucs["cohort"] == "test"]
        half = float(((test["ci_high"] - test["ci_low"]) / 2).median())
        text += (" Every test AUC is the higher one. Two things can do this: the test set is one small sample "
                 f"(its AUCs' 95% CIs are about ±{half:.2f} wide) that can be easier than the training set "
                 "(chapter 01 compares how easy each set is by the phantom's truth), and the refitted model learns "
                 f"from all training rows, each outer-fold model of nested CV from {outer_splits - 1} of "
                 f"{outer_splits} folds of them.")
    elif (gap < 0).all():
        text += " Every test AUC is the lower one, as expected when training performance is optimistic."
    return text


def decision_curve_sentence(curves: pd.DataFrame) -> str | None:
    """Where each model's net benefit beats both treat-all and treat-none, and which model is highest
    where. ``curves``: ``model``, ``threshold``, ``net_benefit``, ``low``, ``high``."""
    if not len(curves):
        return None
    wide = curves.pivot(index="threshold", columns="model", values="net_benefit")
    models = [m for m in curves["model"].drop_duplicates() if m not in ("all", "none")]
    ref = wide[["all", "none"]].max(axis=1)
    spans = []
    for m in models:
        better = wide.index[wide[m] > ref + 1e-12]
        spans.append(f"{m} at {len(better)} of {len(wide)}, from {better.min():.2f} to {better.max():.2f}"
                     if len(better) else f"{m} at none")
    best = wide[models].idxmax(axis=1)
    share = best.value_counts(normalize=True)
    leaders = ", ".join(f"{m} at {v:.0%}" for m, v in share.items())
    low = curves.pivot(index="threshold", columns="model", values="low")
    top = wide[models].max(axis=1)
    overlap = float(np.mean([(top[t] - wide.loc[t, models].drop(best[t]).max()) < (top[t] - low.loc[t, best[t]])
                             for t in wide.index]))
    return (f"Net benefit above both treating all and treating none (thresholds): {', '.join(spans)}. Highest "
            f"net benefit: {leaders} of the thresholds. At {overlap:.0%} of the thresholds the runner-up lies inside the leader's 95% band, so "
            "the order of the models is not settled by these curves.")


def cnn_comparison_findings(pooled: pd.DataFrame, delong: pd.DataFrame, ranks: pd.DataFrame,
                            bands: pd.DataFrame | None = None, calibration: pd.DataFrame | None = None) -> list[str]:
    """The CNN comparison (guo2026, li) in words: the pooled out-of-fold AUCs, the paired tests, how stable
    the "best" architecture is, and accuracy by level band.

    Parameters
    ----------
    pooled : DataFrame
        :func:`ovfkit.fresh_old.pooled_metrics` rows of the AUC (``architecture`` display names, ``estimate``,
        ``ci_low``, ``ci_high``).
    delong : DataFrame
        :func:`ovfkit.acute_chronic.delong_pairs` of the architectures (``a``, ``b``, ``difference``,
        ``p (Holm)``).
    ranks : DataFrame
        :func:`ovfkit.fresh_old.rank_table`.
    bands : DataFrame, optional
        :func:`ovfkit.fresh_old.by_level_band`.
    calibration : DataFrame, optional
        :func:`ovfkit.fresh_old.calibration_table` (``architecture``, ``slope``; NaN where undefined).
    """
    out = []
    if len(pooled):
        order = pooled.sort_values("estimate", ascending=False)
        best, worst = order.iloc[0], order.iloc[-1]
        out.append(f"Pooled out-of-fold AUC ranges from {worst['architecture']}'s "
                   f"{auc_text(worst['estimate'], worst['ci_low'], worst['ci_high'])} to {best['architecture']}'s "
                   f"{auc_text(best['estimate'], best['ci_low'], best['ci_high'])} over the "
                   f"{len(order)} architectures.")
    if len(delong):
        sig = delong[delong["p (Holm)"] < ALPHA]
        named = "; ".join(f"{r['a']} vs {r['b']} ({r['difference']:+.3f})" for _, r in sig.head(6).iterrows())
        out.append(f"Paired DeLong tests on the same vertebrae: {len(sig)} of {len(delong)} pairs differ after Holm's "
                   "correction" + (f" ({named}{'; ...' if len(sig) > 6 else ''})" if len(sig) else
                                   ", so these data do not rank the architectures") + ".")
    if len(ranks):
        top = ranks.sort_values("best in resamples (%)", ascending=False).iloc[0]
        winners = ranks[ranks["best in folds"] > 0]
        text = (f"{len(winners)} different architecture{'s are' if len(winners) != 1 else ' is'} best in at least "
                f"one of the {int(ranks['folds'].iloc[0])} folds. Over patient-bootstrap resamples of the pooled "
                f"predictions, {top['architecture']} is best in {top['best in resamples (%)']:.0f}% (rank 95% interval "
                f"{top['rank 95% interval']})")
        chosen = ranks[ranks["architecture"] == "ResNet-101"]
        if len(chosen):
            text += (f"; guo2026's choice, ResNet-101, has mean rank {chosen['mean rank'].iloc[0]:.1f} (95% interval "
                     f"{chosen['rank 95% interval'].iloc[0]})")
        out.append(text + ". These resamples vary the patients with the trained networks fixed; another split "
                   "or another training run of the networks adds variation they do not show.")
    if bands is not None and len(bands):
        mean = bands.groupby("band")["accuracy"].mean()
        counts = bands.groupby("band")["vertebrae"].first()
        parts = [f"{b} the diaphragm {mean[b]:.1f}% (n = {int(counts[b])})" for b in ("above", "at", "below")
                 if b in mean.index]
        out.append("Mean accuracy over the architectures by level band: " + ", ".join(parts) + ".")
    if calibration is not None and "slope" in calibration and calibration["slope"].notna().any():
        c = calibration.dropna(subset=["slope"]).sort_values("slope")
        lo, hi = c.iloc[0], c.iloc[-1]
        below = int((c["slope_high"] < 1).sum()) if "slope_high" in c else 0
        out.append(f"Calibration slopes run from {lo['slope']:.2f} ({lo['architecture']}) to {hi['slope']:.2f} "
                   f"({hi['architecture']}); {below} of {len(c)} networks have a slope whose 95% CI lies below 1, "
                   "that is, probabilities too extreme to be read as risks without recalibration.")
    return out


def transport_findings(table: pd.DataFrame, families: pd.DataFrame, params: str = "") -> list[str]:
    """The radiomics sensitivity study in words (``transport_sensitivity`` and ``transport_families``, from
    :func:`ovfkit.transport.sensitivity`); a value that could not be computed (a tiny cohort) is left out."""
    if table.empty:
        return []
    out = []
    cohorts = [c[6:] for c in table.columns if c.startswith("shift ")]
    aucs = [c[4:] for c in table.columns if c.startswith("AUC ") and not c.endswith(("ComBat", "low", "high"))
            and c != "AUC pooled"]
    shipped = table[table["choice"] == "shipped"]
    if len(shipped):
        r = shipped.iloc[0]
        per = ", ".join(f"{c} {r[f'AUC {c}']:.3f}" for c in aucs if pd.notna(r[f"AUC {c}"]))
        if per:
            combat = f" and {r['AUC pooled, ComBat']:.3f} with it" if pd.notna(r["AUC pooled, ComBat"]) else ""
            out.append(f"As shipped{f' (`{params}`)' if params else ''}, the fixed model's held-out AUC is {per}; "
                       f"pooled over the held-out cohorts "
                       f"{auc_text(r['AUC pooled'], r['AUC pooled low'], r['AUC pooled high'])} without ComBat{combat}.")
        shifts = {c: r[f"shift {c}"] for c in cohorts if pd.notna(r[f"shift {c}"])}
        if shifts:
            far = max(shifts, key=shifts.get)
            base = f" (internal, the training center itself: {shifts['internal']:.2f}, the sampling error)" \
                if "internal" in shifts and far != "internal" else ""
            out.append(f"Within each class, the shipped features of the {far} cohort sit a median {shifts[far]:.2f} "
                       f"training standard deviations from the training center's{base}.")
            fam = families[(families["choice"] == "shipped") & (families["cohort"] == far)].dropna(subset=["shift"])
            if len(fam):
                top = fam.loc[fam["shift"].idxmax()]
                out.append(f"The shipped family that moves most at the {far} cohort: {top['image']} "
                           f"{top['feature_class']} ({top['shift']:.2f} standard deviations, {int(top['features'])} "
                           "features).")
    whole = ["shipped", "reference", "file"]  # rows that are not one change of the reference
    changes = table[~table["choice"].isin(whole)].dropna(subset=["AUC pooled"])
    if len(changes):
        ref = table[(table["choice"] == "reference")].dropna(subset=["AUC pooled"])
        best, worst = changes.loc[changes["AUC pooled"].idxmax()], changes.loc[changes["AUC pooled"].idxmin()]
        ref_text = f"; the original image as shipped scores {ref.iloc[0]['AUC pooled']:.3f}" if len(ref) else ""
        out.append(f"Changed one at a time, the choices move the pooled AUC without ComBat from {worst['AUC pooled']:.3f} "
                   f"({worst['choice']}: {worst['variant']}) to {best['AUC pooled']:.3f} ({best['choice']}: "
                   f"{best['variant']}){ref_text}.")
    far = [f"shift {c}" for c in cohorts if c != "internal"]
    moved = table[~table["choice"].isin(whole)]
    moved = moved.assign(shift=moved[far].max(axis=1)).dropna(subset=["shift"]) if far else moved.iloc[:0]
    if len(moved):
        most, least = moved.loc[moved["shift"].idxmax()], moved.loc[moved["shift"].idxmin()]
        out.append(f"The largest within-class shift at a center other than training's comes with {most['choice']}: "
                   f"{most['variant']} ({most['shift']:.2f}), the smallest with {least['choice']}: "
                   f"{least['variant']} ({least['shift']:.2f}).")
    papers = table[table["choice"] == "file"].dropna(subset=["AUC pooled"])
    if len(papers) and len(shipped) and pd.notna(shipped.iloc[0]["AUC pooled"]):
        r = papers.iloc[0]
        shift = "".join(f", within-class shift {r[c]:.2f} at the {c[6:]} cohort" for c in far[-1:] if pd.notna(r[c]))
        out.append(f"{r['variant'][0].upper()}{r['variant'][1:]}: pooled AUC {r['AUC pooled']:.3f} without ComBat"
                   f"{shift}, against {shipped.iloc[0]['AUC pooled']:.3f} as shipped.")
    rated = table.dropna(subset=["AUC pooled", "AUC pooled, ComBat"])
    if len(rated):
        up = int((rated["AUC pooled, ComBat"] > rated["AUC pooled"]).sum())
        out.append(f"ComBat raises the pooled AUC of {up} of {len(rated)} variants.")
    if len(shipped) and pd.notna(shipped.iloc[0]["AUC pooled low"]):
        r = shipped.iloc[0]
        out.append(f"The pooled AUC's 95% CI as shipped is {r['AUC pooled high'] - r['AUC pooled low']:.2f} wide. The "
                   "variants are scored on the same vertebrae, so a difference between two of them is less uncertain "
                   "than that, but the table tests none; read a small difference in AUC as no difference.")
    return out
