"""Train a small CIFAR-10 CNN with the QCFS activation and export it to ONNX.

    python examples/train_qcfs_cifar.py [--levels 4] [--epochs 60] [--out examples/qcfs_cifar.onnx]

Needs PyTorch and onnx (a separate environment: neuroemu itself never imports torch), e.g.
``python -m venv venv-torch && venv-torch/bin/pip install torch onnx numpy``, then run this file
with that interpreter from the repository root.

The activation is QCFS (quantisation-clip-floor-shift; Bu et al., "Optimal ANN-SNN conversion
for high-accuracy and low-latency spiking neural networks", ICLR 2022)::

    h(x) = λ · clip(⌊x · L/λ + ½⌋ / L, 0, 1)

with a trainable λ per layer and L levels, trained through the floor with a straight-through
gradient.  The exported graph spells it as ``Mul(L/λ) → Add(½) → Floor → Clip(0, L) →
Mul(λ/L)``, which :mod:`converter.qcfs` recognises; converted with θ = λ and v(0) = θ/2, an
IF network reproduces the quantised activations when T = L (Bu et al., Theorem 2).

Data: the only CIFAR-10 images available here are the shared 1,000-image test subset
(``neuroemu.datasets.load_cifar10_subset``; no package in the pip, apt or conda lists of this
machine ships CIFAR-10 itself).  The network trains on images 0..799 (random crops and
horizontal flips) and is evaluated on the held-out images 800..999, so its accuracy is that of
an 800-image training set, far below a CIFAR-10 network trained on 50,000 images; it exists to
measure conversion fidelity (SNN against its own ANN), not to compete.
The benchmark (``benchmarks/fidelity.py --models qcfs_cifar``) calibrates nothing for QCFS
layers: their λ is part of the model.

Architecture (channels): conv32 → avgpool2 → conv64 → avgpool2 → conv64 → avgpool2 → dense 10
(3×3 convolutions, padding 1), every conv followed by BatchNorm (folded into the conv by the
exporter) and QCFS.  About 8 MMACs per image; a few minutes on one CPU core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class QCFS(nn.Module):
    """λ · clip(⌊x·L/λ + ½⌋/L, 0, 1) with trainable λ; straight-through floor in training."""

    def __init__(self, levels: int, lam: float = 4.0):
        super().__init__()
        self.levels = int(levels)
        self.lam = nn.Parameter(torch.tensor(float(lam)))

    def forward(self, x):
        L = self.levels
        if self.training:
            t = x * (L / self.lam) + 0.5
            t = t + (torch.floor(t) - t).detach()  # straight-through estimator
            return torch.clamp(t, 0, L) * (self.lam / L)
        lam = float(self.lam.detach())  # constants in the exported graph
        return torch.clamp(torch.floor(x * (L / lam) + 0.5), 0, L) * (lam / L)


def make_net(levels: int) -> nn.Sequential:
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), QCFS(levels)]
    return nn.Sequential(*block(3, 32), nn.AvgPool2d(2), *block(32, 64), nn.AvgPool2d(2),
                         *block(64, 64), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 64, 10))


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded crops and horizontal flips (NCHW)."""
    n = len(x)
    pad = nn.functional.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    out = torch.stack([pad[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(n)])
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", type=int, default=4, help="QCFS quantisation levels L")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "examples" / "qcfs_cifar.onnx"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # a shared machine
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    from neuroemu import datasets
    x, y = datasets.load_cifar10_subset()
    x = torch.tensor(x, dtype=torch.float32) / 255.0
    y = torch.tensor(y, dtype=torch.int64)
    xtr, ytr, xte, yte = x[:800], y[:800], x[800:], y[800:]
    net = make_net(a.levels)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.time()
    for ep in range(a.epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for s in range(0, len(xtr), 50):
            idx = perm[s:s + 50]
            opt.zero_grad()
            loss = loss_fn(net(augment(xtr[idx], gen)), ytr[idx])
            loss.backward()
            opt.step()
        sched.step()
        if ep % 10 == 9 or ep == a.epochs - 1:
            net.eval()
            with torch.no_grad():
                acc = (net(xte).argmax(1) == yte).float().mean().item()
            print(f"epoch {ep + 1}: loss {loss.item():.3f}, test (800..999) {100 * acc:.1f} %, "
                  f"{time.time() - t0:.0f} s", flush=True)
    net.eval()
    lams = [round(m.lam.item(), 4) for m in net if isinstance(m, QCFS)]
    print(f"λ per QCFS layer: {lams}")
    torch.onnx.export(net, xte[:2], a.out, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=13, do_constant_folding=True, dynamo=False)
    print(f"wrote {a.out} ({Path(a.out).stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
