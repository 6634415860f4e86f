"""Why side-by-side runs limit their threads: seconds per fine-tuning step of ResNet-50's layer4 (the
part the default profile trains) when one process runs alone, and when two run at once with the
default thread count each and with their share of the cores each (``runner.thread_limits``).

    .venv/bin/python benchmarks/threads.py [--steps 15]

Prints the three times and the ratio of oversubscribed to shared (measured on 2 cores: 1.6x to 3.6x
from run to run).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

STEP = """
import sys, time, torch
from torchvision.models import resnet50
if len(sys.argv) > 2:
    torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
m = resnet50(num_classes=3)
body = torch.nn.Sequential(m.layer4, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(2048, 3))
x, y = torch.randn(32, 1024, 6, 6), torch.randint(0, 3, (32,))
opt = torch.optim.Adam(body.parameters())
def step():
    loss = torch.nn.functional.cross_entropy(body(x), y); opt.zero_grad(); loss.backward(); opt.step()
for _ in range(3):
    step()
t = time.perf_counter()
for _ in range(int(sys.argv[1])):
    step()
print(f"{(time.perf_counter() - t) / int(sys.argv[1]):.4f}")
"""


def seconds_per_step(n_processes: int, steps: int, threads: int | None) -> float:
    args = [sys.executable, "-c", STEP, str(steps)] + ([] if threads is None else [str(threads)])
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(n_processes)]
    times = [float(re.findall(r"[\d.]+", p.communicate()[0])[-1]) for p in procs]
    return max(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15)
    args = ap.parse_args()
    share = max(1, (os.cpu_count() or 1) // 2)
    alone = seconds_per_step(1, args.steps, None)
    over = seconds_per_step(2, args.steps, None)
    shared = seconds_per_step(2, args.steps, share)
    print(f"one process, default threads: {alone:.3f} s/step")
    print(f"two processes, default threads each: {over:.3f} s/step")
    print(f"two processes, {share} thread(s) each: {shared:.3f} s/step")
    print(f"oversubscribed / shared: {over / shared:.1f}x")


if __name__ == "__main__":
    main()
