"""Train the small CNN that ``neuroemu demo`` converts: scikit-learn's 8x8 handwritten digits.

What it shows: how the committed demo weights ``neuroemu/assets/digits_cnn.npz`` (and the
architecture + training record ``digits_cnn.json`` beside them) were made, so anyone can rebuild
them.  Data: ``sklearn.datasets.load_digits`` (1,797 images, pixel values 0..16); the model sees
``x / 16``.  Split: images 0..1299 train, 1300..1796 test (the float test accuracy is recorded).

Architecture (channels-last, ReLU, no batch norm, average pooling so every layer converts
exactly to integrate-and-fire neurons)::

    input 8x8x1 -> conv 16@3x3 same -> relu -> avgpool 2 -> conv 32@3x3 same -> relu
                -> avgpool 2 -> flatten (2*2*32) -> dense 10 (logits)

Uses PyTorch (CPU) only here, never in the library: ``pip install torch``.  Run::

    python examples/train_digits.py                 # writes neuroemu/assets/digits_cnn.{npz,json}
    python examples/train_digits.py --epochs 2 -o /tmp/d.npz   # quick check
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parents[1] / "neuroemu" / "assets"
N_TRAIN = 1300
INPUT_MAX = 16

#: layer list understood by ``converter.load_model`` (``converter/npz_import.py``) (GraphBuilder calls)
ARCHITECTURE = [
    {"kind": "input", "shape": [8, 8, 1], "layout": "HWC"},
    {"kind": "conv2d", "name": "conv1", "padding": "same"},
    {"kind": "relu", "name": "conv1_relu"},
    {"kind": "avgpool", "name": "pool1", "pool": 2},
    {"kind": "conv2d", "name": "conv2", "padding": "same"},
    {"kind": "relu", "name": "conv2_relu"},
    {"kind": "avgpool", "name": "pool2", "pool": 2},
    {"kind": "flatten", "name": "flatten"},
    {"kind": "dense", "name": "logits"},
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, default=ASSETS / "digits_cnn.npz")
    args = ap.parse_args(argv)

    import torch
    from torch import nn
    from sklearn.datasets import load_digits

    torch.manual_seed(args.seed)
    digits = load_digits()
    x = digits.images.astype(np.float32) / INPUT_MAX          # (N, 8, 8) in [0, 1]
    y = digits.target.astype(np.int64)
    xt = torch.from_numpy(x[:, None])                          # NCHW for torch
    yt = torch.from_numpy(y)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 16, 3, padding=1)
            self.c2 = nn.Conv2d(16, 32, 3, padding=1)
            self.fc = nn.Linear(2 * 2 * 32, 10)

        def forward(self, v):
            v = nn.functional.avg_pool2d(torch.relu(self.c1(v)), 2)
            v = nn.functional.avg_pool2d(torch.relu(self.c2(v)), 2)
            return self.fc(v.permute(0, 2, 3, 1).flatten(1))   # HWC flatten order

    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for _ in range(args.epochs):
        net.train()
        perm = torch.randperm(N_TRAIN, generator=gen)
        for i in range(0, N_TRAIN, 64):
            idx = perm[i:i + 64]
            xb = xt[idx]
            # augmentation: shift each batch by up to one pixel (zero fill)
            dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
            xb = torch.roll(xb, (dy, dx), (2, 3))
            if dy:
                xb[:, :, 0 if dy > 0 else -1, :] = 0
            if dx:
                xb[:, :, :, 0 if dx > 0 else -1] = 0
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xb), yt[idx])
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        logits = net(xt).numpy().astype(np.float64)
    train_acc = float((logits[:N_TRAIN].argmax(1) == y[:N_TRAIN]).mean())
    test_acc = float((logits[N_TRAIN:].argmax(1) == y[N_TRAIN:]).mean())

    sd = {k: v.detach().numpy().astype(np.float64) for k, v in net.state_dict().items()}
    arrays = {
        "conv1/kernel": sd["c1.weight"].transpose(2, 3, 1, 0),   # OIHW -> HWIO
        "conv1/bias": sd["c1.bias"],
        "conv2/kernel": sd["c2.weight"].transpose(2, 3, 1, 0),
        "conv2/bias": sd["c2.bias"],
        "logits/kernel": sd["fc.weight"].T,                      # (out, in) -> (in, out)
        "logits/bias": sd["fc.bias"],
    }
    record = {
        "name": "digits_cnn",
        "architecture": ARCHITECTURE,
        "input_max": INPUT_MAX,
        "input_scale": 1.0 / INPUT_MAX,
        "data": "sklearn.datasets.load_digits (8x8, values 0..16)",
        "train_indices": [0, N_TRAIN - 1],
        "test_indices": [N_TRAIN, len(y) - 1],
        "epochs": args.epochs,
        "seed": args.seed,
        "optimizer": "AdamW lr 3e-3 wd 1e-2, cosine schedule, batch 64, cross-entropy, +-1 pixel shifts",
        "train_accuracy": train_acc,
        "float_test_accuracy": test_acc,
        "training_seconds": round(time.time() - t0, 1),
        "torch_version": torch.__version__,
        "script": "examples/train_digits.py",
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, architecture=np.array(json.dumps(record)), **arrays)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"train accuracy {train_acc:.4f}, float test accuracy {test_acc:.4f} "
          f"(digits {N_TRAIN}..{len(y) - 1}); wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
