"""Grad-CAM (Selvaraju et al. 2017): where in the input a fine-tuned network finds the evidence for a class."""

from __future__ import annotations

import numpy as np

from ovfkit.deep.inputs import to_network_input


def cam_at(model, layer, xin, target: int | None = None):
    """Grad-CAM (Selvaraju et al. 2017) at module ``layer`` for one network input ``xin`` (1, 3, h, w).

    Returns the logits (1, n_classes), the target class (``target``, or the predicted one) and the map (h, w)
    in [0, 1], upsampled bilinearly.
    """
    import torch

    model.eval()
    acts, grads = {}, {}

    def keep(module, inputs, output):
        acts["a"] = output
        output.register_hook(lambda grad: grads.__setitem__("g", grad))

    handle = layer.register_forward_hook(keep)
    try:
        out = model(xin.detach().requires_grad_(True))  # gradients flow even where every weight is frozen
        target = int(out.argmax(1)) if target is None else int(target)
        model.zero_grad()
        out[0, target].backward()
    finally:
        handle.remove()
    w = grads["g"].mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((w * acts["a"]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=tuple(xin.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    cam = cam.detach().numpy()
    return out.detach(), target, cam / cam.max() if cam.max() > 0 else cam


def grad_cam(model, x: np.ndarray, target: int, scaling: str) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of ``target`` at layer4 for one input (size, size) -> map in [0, 1]."""
    return cam_at(model, model.layer4, to_network_input(x[None], scaling), target)[2]


def ensemble_grad_cam(models: list, x: np.ndarray, scaling: str) -> tuple[int, np.ndarray]:
    """The class that ``models`` predict together (mean softmax) and the mean of their Grad-CAMs for it.

    This is how the cross-fitted networks see a held-out vertebra, whose features are the mean over them.

    Parameters
    ----------
    models : list of fine-tuned ResNet-50s
    x : ndarray, shape (size, size)
        One prepared input in [0, 1].

    Returns
    -------
    (int, ndarray of shape (size, size) in [0, 1])
    """
    import torch

    from ovfkit.deep.training import predict

    probs = np.mean([torch.softmax(torch.as_tensor(predict(m, x[None], scaling)), 1).numpy()[0] for m in models], 0)
    target = int(np.argmax(probs))
    cam = np.mean([grad_cam(m, x, target, scaling) for m in models], axis=0)
    return target, cam / cam.max() if cam.max() > 0 else cam
