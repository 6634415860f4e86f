"""Words for the book: which pretrained sources and which fine-tuning scheme produced a chapter's numbers."""

from __future__ import annotations

from pathlib import Path

from ovfkit.deep.recipe import Recipe


def sources_statement(backbones, recipe: Recipe, weights: dict | None = None) -> str:
    """One Markdown paragraph naming which pretrained sources produced a chapter's numbers."""
    text = {
        "imagenet": "ImageNet (torchvision ResNet-50 IMAGENET1K_V2 weights)",
        "radimagenet": "RadImageNet (the authors' ResNet-50 PyTorch checkpoint)",
        "random": "random initialisation (no pretraining)",
        "proxy-natural": f"**proxy-natural**: ovfkit's own stand-in for ImageNet, pretrained offline by rotation "
                         f"prediction on crops of scikit-image's natural photographs ({recipe.proxy_steps} steps)",
        "proxy-medical": f"**proxy-medical**: ovfkit's own stand-in for RadImageNet, pretrained the same way on "
                         f"synthetic radiographs and CT slices that are not this cohort ({recipe.proxy_steps} steps)",
    }
    parts = [text[b] + (f", weights file `{Path(weights[b]).name}`" if weights and b in weights else "")
             for b in backbones]
    note = ""
    if {"proxy-natural", "proxy-medical"} & set(backbones):
        note = (" The proxies compare two pretraining *domains* with a small offline pretext; they are not the "
                "ImageNet or RadImageNet networks of the papers, whose weights cannot be downloaded here, and their "
                "numbers say nothing about those networks.")
    return "**Backbone sources behind every number in this chapter:** " + "; ".join(parts) + "." + note


def crossfit_statement(recipe: Recipe, training_rows: str = "cross-fitted") -> str:
    """One Markdown sentence saying how the training rows' features were made."""
    if training_rows == "in-sample":
        return ("**In-sample deep features (leaky):** one network was fine-tuned on all training rows and gave "
                "every row its features, so the training rows' features have seen their own labels. Use this "
                "only to measure the leak.")
    return (f"**Cross-fitted deep features:** the training patients were split into {recipe.crossfit_folds} "
            "patient-grouped folds drawn from patient ids alone; each training vertebra's features come from the "
            f"network fine-tuned on the other {recipe.crossfit_folds - 1} folds, which never saw its labels, and "
            f"each held-out vertebra's features are the mean over the {recipe.crossfit_folds} networks.")
