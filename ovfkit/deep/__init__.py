"""Deep transfer-learning features: ResNet-50s fine-tuned per the papers, cross-fitted, 2048-D features.

The papers (zhang2024, liu2025) fine-tune a ResNet-50 initialised from ImageNet or RadImageNet weights
on the training cohort and take the 2048-D average-pooling output as the deep features. The modules:

* :mod:`~ovfkit.deep.recipe`: :class:`Recipe`, every setting that decides a network;
* :mod:`~ovfkit.deep.inputs`: the ROI crop of a radiograph or of the largest sagittal CT slice;
* :mod:`~ovfkit.deep.backbones`: pretrained weights from files (torchvision, RadImageNet), never downloaded;
* :mod:`~ovfkit.deep.proxy`: the offline stand-ins ``proxy-natural`` and ``proxy-medical``;
* :mod:`~ovfkit.deep.training`: fine-tuning and feature read-out;
* :mod:`~ovfkit.deep.crossfit`: the cached step, cross-fitted so no training row's features saw its label;
* :mod:`~ovfkit.deep.gradcam`: Grad-CAM;
* :mod:`~ovfkit.deep.describe`: the sentences a chapter prints about its sources.

PCA of the deep features is a selection step: :class:`ovfkit.select.DeepPCA`.
"""

from ovfkit.deep.backbones import (IMAGENET_FILE, RADIMAGENET_FILE, SOURCES, hub_checkpoint_dir, load_backbone,
                                   radimagenet_state_dict)
from ovfkit.deep.crossfit import TRAINING_ROWS, DeepResult, crossfit_folds, deep_features
from ovfkit.deep.describe import crossfit_statement, sources_statement
from ovfkit.deep.gradcam import ensemble_grad_cam, grad_cam
from ovfkit.deep.inputs import IMAGENET_MEAN, IMAGENET_STD, prepare_image, prepare_manifest, to_network_input
from ovfkit.deep.proxy import PROXIES, ProxyRecipe, proxy_checkpoint, proxy_images, proxy_recipe
from ovfkit.deep.recipe import Recipe
from ovfkit.deep.training import (FineTuned, Trunk, extract_features, finetune, predict, predict_from_trunk,
                                  set_trainable, train_mode)

__all__ = ["DeepResult", "FineTuned", "IMAGENET_FILE", "IMAGENET_MEAN", "IMAGENET_STD", "PROXIES", "ProxyRecipe",
           "RADIMAGENET_FILE", "Recipe", "SOURCES", "TRAINING_ROWS", "Trunk", "crossfit_folds", "crossfit_statement",
           "deep_features", "ensemble_grad_cam", "extract_features", "finetune", "grad_cam", "hub_checkpoint_dir",
           "load_backbone", "predict", "predict_from_trunk", "prepare_image", "prepare_manifest", "proxy_checkpoint", "proxy_images",
           "proxy_recipe", "radimagenet_state_dict", "set_trainable", "sources_statement", "to_network_input",
           "train_mode"]
