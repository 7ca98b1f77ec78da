"""Train the small N-MNIST CNN used by ``examples/nmnist_events.py`` (needs PyTorch).

    python examples/train_nmnist.py            # writes examples/nmnist_cnn.npz and .json

Data: the 1,000 shared N-MNIST training samples (``train1K.txt``) only — not the 60,000 of the
full data set — so expect an accuracy well below published N-MNIST figures.  Test: the 100
shared test samples (``test100.txt``), used for the reported accuracy only, never for choices.

Input: count frames (Wu et al., ECC, section 4.5): events per pixel and polarity over the whole
recording (t0 = first event, window = the sample's span, so every event counts), divided by a
constant ``c`` = the 99th percentile of the non-zero training counts.  The same events, binned
into T steps, drive the spiking network later: a pixel with n events gives the CNN ``n / c``.

Network (channels-last, no BatchNorm, valid padding):

    2x34x34 -> conv 16@5x5 s2 -> ReLU -> conv 32@3x3 s2 -> ReLU -> flatten -> dense 10

Augmentation: random shifts of up to ``SHIFT`` pixels (zero fill), applied to the count frames.
Everything is seeded (``SEED``); torch runs single-threaded-deterministic on the CPU.

The weights are saved HWIO / (nin, nout) and channels-last (flatten in H, W, C order), so
``examples/nmnist_events.build_graph()`` rebuilds the network with NumPy alone.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from emulator.event_input import NMNIST_SHAPE, count_frames, load_nmnist  # noqa: E402
from neuroemu import datasets  # noqa: E402

SEED = 0
SHIFT = 3
EPOCHS = 60
BATCH = 32
LR = 2e-3
WEIGHT_DECAY = 1e-4
PERCENTILE = 99.0
SHAPE = NMNIST_SHAPE + (2,)  # (H, W, C): OFF = channel 0, ON = channel 1

#: layer list in the neuroemu model-npz schema (``converter.load_model`` (``converter/npz_import.py``)): GraphBuilder
#: calls in order; weights ``<name>/kernel`` and ``<name>/bias`` in the npz
ARCH = [
    {"kind": "input", "shape": list(SHAPE), "layout": "HWC"},
    {"kind": "conv2d", "name": "conv1", "filters": 16, "kernel": 5, "strides": 2,
     "padding": "valid"},
    {"kind": "relu", "name": "conv1_relu"},
    {"kind": "conv2d", "name": "conv2", "filters": 32, "kernel": 3, "strides": 2,
     "padding": "valid"},
    {"kind": "relu", "name": "conv2_relu"},
    {"kind": "flatten", "name": "flatten"},
    {"kind": "dense", "name": "dense", "units": 10},
]


class NmnistCNN(nn.Module):
    """The torch twin of :data:`ARCH` (NCHW inside torch; exported channels-last)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 16, 5, stride=2)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2)
        self.dense = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):  # x: (N, C, H, W)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = x.permute(0, 2, 3, 1).reshape(len(x), -1)  # flatten in H, W, C order
        return self.dense(x)


def frames_and_scale(samples, c=None):
    """Raw count frames (N, H, W, C) and the normalisation constant c (percentile if None)."""
    raw = count_frames(samples, SHAPE, window_us=None, scale=1.0)
    if c is None:
        c = float(np.percentile(raw[raw > 0], PERCENTILE))
    return raw / np.float32(c), c


def shift_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift each NCHW sample by a random (dy, dx) in [-SHIFT, SHIFT], zero fill."""
    n, _, h, w = x.shape
    pad = nn.functional.pad(x, (SHIFT, SHIFT, SHIFT, SHIFT))
    d = torch.randint(0, 2 * SHIFT + 1, (n, 2), generator=gen)
    out = torch.empty_like(x)
    for i in range(n):
        dy, dx = int(d[i, 0]), int(d[i, 1])
        out[i] = pad[i, :, dy:dy + h, dx:dx + w]
    return out


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum()) / len(y)


def export(model, path_npz: Path, record: dict) -> dict:
    """Save channels-last weights (conv kernels HWIO, dense (nin, nout)) as ``<layer>/kernel``,
    ``<layer>/bias``, plus the record as the JSON string ``architecture`` (the neuroemu model
    npz schema, so ``neuroemu run --model examples/nmnist_cnn.npz`` reads it)."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    arrays = {
        "conv1/kernel": sd["conv1.weight"].transpose(2, 3, 1, 0),  # OIHW -> HWIO
        "conv1/bias": sd["conv1.bias"],
        "conv2/kernel": sd["conv2.weight"].transpose(2, 3, 1, 0),
        "conv2/bias": sd["conv2.bias"],
        "dense/kernel": sd["dense.weight"].T.copy(),  # (out, in) -> (in, out)
        "dense/bias": sd["dense.bias"],
    }
    record["weights"] = {k: list(v.shape) for k, v in arrays.items()}
    np.savez(path_npz, architecture=np.array(json.dumps(record)), **arrays)
    return record["weights"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--out", type=Path, default=HERE / "nmnist_cnn.npz")
    args = ap.parse_args(argv)

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)

    tr_s, tr_y = load_nmnist(datasets.data_path("nmnist"), split="train")
    te_s, te_y = load_nmnist(datasets.data_path("nmnist"), split="test")
    xtr, c = frames_and_scale(tr_s)
    xte, _ = frames_and_scale(te_s, c)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa
    xtr_t, xte_t = to_t(xtr), to_t(xte)
    ytr_t, yte_t = torch.from_numpy(tr_y), torch.from_numpy(te_y)

    model = NmnistCNN()
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    loss_fn = nn.CrossEntropyLoss()
    n = len(xtr_t)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, BATCH):
            idx = perm[start:start + BATCH]
            xb = shift_batch(xtr_t[idx], gen) if SHIFT else xtr_t[idx]
            loss = loss_fn(model(xb), ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if (epoch + 1) % 10 == 0 or epoch == 0:
            model.eval()
            print(f"epoch {epoch + 1:3d}  loss {total / n:.4f}  "
                  f"train acc {accuracy(model, xtr_t, ytr_t):.3f}", flush=True)

    model.eval()
    train_acc = accuracy(model, xtr_t, ytr_t)
    test_acc = accuracy(model, xte_t, yte_t)
    record = {
        "name": "nmnist_cnn",
        "description": "Small ReLU CNN on N-MNIST count frames (ECC section 4.5 normalisation)",
        "trained_on": "the 1,000 shared N-MNIST training samples (train1K.txt) only",
        "tested_on": "the 100 shared N-MNIST test samples (test100.txt)",
        "input_shape_hwc": list(SHAPE),
        "channels": "0 = OFF polarity, 1 = ON polarity",
        "architecture": ARCH,
        "weight_layout": "conv kernels HWIO, dense (nin, nout), flatten in H, W, C order",
        "count_scale_c": c,
        "input_scale": 1.0 / c,
        "input_scale_meaning": "model units per event (count frame x = n / c); for an events "
                               "network converted for T steps use input_scale = T / c",
        "count_scale_rule": f"{PERCENTILE:g}th percentile of the non-zero per-pixel event "
                            f"counts of the training frames",
        "window": "t0 = first event of each sample, window = its span (no event dropped)",
        "float_train_accuracy": train_acc,
        "float_test_accuracy": test_acc,
        "training": {"seed": SEED, "epochs": args.epochs, "batch": BATCH, "optimizer": "Adam",
                     "lr": LR, "weight_decay": WEIGHT_DECAY, "schedule": "cosine",
                     "augmentation": f"random shifts up to {SHIFT} px, zero fill",
                     "torch": torch.__version__},
        "command": "python examples/train_nmnist.py",
        "date": _dt.date.today().isoformat(),
    }
    export(model, args.out, record)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"c = {c:g}; float accuracy: train {train_acc:.3f}, test {test_acc:.3f} "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
