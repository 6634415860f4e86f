"""ResNet-50 throughput on this machine for the deep-feature recipes.

Prints training images per second (forward, backward and Adam step, batch 8) and inference images per
second (batch 64) for the default profile's settings (X-ray 128 px and CT 64 px, layer4 fine-tuning) and
for the paper's settings (224 px / 64 px, full fine-tuning), on CUDA when present, else on the CPU.

    .venv/bin/python benchmarks/deep.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.models import resnet50  # noqa: E402

from ovfkit import deep  # noqa: E402
from ovfkit.settings import settings  # noqa: E402


def throughput(recipe: deep.Recipe, device: str, repeats: int) -> tuple[float, float]:
    model = resnet50(weights=None)
    model.fc = torch.nn.Linear(2048, 3)
    deep.set_trainable(model, recipe.trainable)
    model.to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.lr)
    x = deep.to_network_input(np.random.default_rng(0).random((recipe.batch_size, recipe.size, recipe.size),
                                                              dtype=np.float32), "minus1to1").to(device)
    y = torch.randint(0, 3, (recipe.batch_size,), device=device)
    deep.train_mode(model, recipe.trainable)
    for i in range(repeats + 1):  # the first step warms up
        if i == 1:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    train = repeats * recipe.batch_size / (time.perf_counter() - t0)
    model.eval()
    xi = x.repeat(8, 1, 1, 1)
    with torch.no_grad():
        model(xi)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(xi)
        if device == "cuda":
            torch.cuda.synchronize()
    return train, repeats * len(xi) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU'}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    for profile in ("default", "paper"):
        for modality in ("xray", "ct"):
            r = settings(profile, modality).deep
            train, infer = throughput(r, device, args.repeats)
            print(f"{profile:8s} {modality:5s} {r.size:3d} px, trains {r.trainable:6s}: "
                  f"training {train:7.1f} images/s, inference {infer:7.1f} images/s")


if __name__ == "__main__":
    main()
