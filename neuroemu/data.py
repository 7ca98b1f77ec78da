"""``load_data(path)``: one entry point for every data set the CLI accepts.

Accepted ``path`` values (see :func:`load_data`):

* a built-in name: ``digits`` (scikit-learn 8x8 digits, test split 1300..1796),
  ``digits-train`` (0..1299), ``mnist`` (shared MNIST test set), ``cifar10`` (shared CIFAR-10
  subset), ``nmnist`` / ``nmnist-train`` (shared N-MNIST samples);
* an MNIST IDX images file (``*-images-idx3-ubyte[.gz]``; labels from the sibling
  ``*-labels-idx1-ubyte[.gz]``) or a folder holding such a pair;
* an ``.npz`` with ``x`` (and optionally ``y``), object arrays refused;
* a CIFAR-10 python batch file (``data_batch_1`` … ``test_batch``) or the
  ``cifar-10-batches-py`` folder (all training batches, or ``test_batch`` for split ``test``);
* a folder of N-MNIST ``<id>.bs2`` files with ``train1K.txt`` / ``test100.txt`` labels.

Why the CIFAR-10 reader does not simply call ``pickle.load``: the python batches are pickles, and
unpickling runs whatever callables the file names, so a downloaded data file could execute
arbitrary code.  :class:`_CifarUnpickler` admits only what a CIFAR batch legitimately contains —
dicts, lists, bytes, str, ints and the two NumPy callables that rebuild an ``ndarray``
(``_reconstruct`` and ``dtype``) plus ``_codecs.encode`` (how protocol-2 pickles written by
Python 3 spell ``bytes``) — and refuses any other global with a :class:`FileFormatError`.
The result is checked against the batch layout before it is used.

Every loader returns a :class:`Dataset`; images keep their raw integer values (uint8 0..255 for
MNIST/CIFAR, 0..16 for the digits), the network's ``input_scale`` maps them to model units.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hw_models.errors import BudgetError, DataError, FileFormatError
from hw_models.safeio import check_budget

from . import datasets

#: names resolved without a path
BUILTIN = ("digits", "digits-train", "mnist", "cifar10", "nmnist", "nmnist-train")
DIGITS_TRAIN = 1300  # sklearn digits 0..1299 train the demo model; the rest are its test split


@dataclass
class Dataset:
    """Samples and labels of one data set.

    ``x`` is an array ``(N, …)`` of raw values (``kind="images"``) or a list of N structured
    event arrays (``kind="events"``, see :mod:`emulator.event_io`); ``y`` int64 labels or None.
    ``input_max`` is the largest raw value the source can hold (16 digits, 255 pixels, None for
    events); ``sensor`` the (H, W) of an event camera.
    """

    x: object
    y: np.ndarray | None
    source: str
    kind: str = "images"
    input_max: int | None = None
    sensor: tuple | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, n: int | None = None, start: int = 0) -> "Dataset":
        """The samples ``start … start + n − 1`` (all from ``start`` when ``n`` is None)."""
        if start < 0 or (n is not None and n < 1):
            raise DataError(f"bad sample range: start {start}, count {n}")
        stop = len(self) if n is None else min(len(self), start + n)
        if start >= len(self):
            raise DataError(f"{self.source}: asked for samples from {start}, but the data set "
                            f"has only {len(self)}")
        x = self.x[start:stop]
        y = None if self.y is None else self.y[start:stop]
        return Dataset(x, y, self.source, self.kind, self.input_max, self.sensor,
                       dict(self.info, start=start))

    def fingerprint(self) -> str:
        """A short content hash (to match stored float predictions to these exact samples)."""
        import hashlib
        h = hashlib.sha1()
        if self.kind == "images":
            a = np.ascontiguousarray(self.x)
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
        else:
            for ev in self.x:
                h.update(np.ascontiguousarray(ev).tobytes())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------

def load_data(path: str | os.PathLike, split: str | None = None) -> Dataset:
    """Read a data set (see the module docstring for what ``path`` may be).

    ``split`` (``"train"`` / ``"test"``) picks the N-MNIST label list or the CIFAR batches of a
    folder; default test.  Raises :class:`DataError` / :class:`FileFormatError` with the path.
    """
    if isinstance(path, Dataset):
        return path
    name = str(path)
    if name in BUILTIN and not Path(name).exists():
        return _builtin(name)
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such data file or folder (or use a built-in name: "
                        f"{', '.join(BUILTIN)})")
    if p.is_dir():
        return _folder(p, split)
    low = p.name.lower()
    if low.endswith(".npz"):
        x, y = datasets.load_npz(p)
        return Dataset(x, _labels(y, p), str(p), input_max=_dtype_max(x))
    if "idx3" in low or low.endswith((".idx", ".idx.gz")):
        return _idx_images(p)
    if low.endswith(".bs2") or low.endswith(".bin"):
        from emulator.event_io import read_nmnist_bin
        from emulator.event_input import NMNIST_SHAPE
        return Dataset([read_nmnist_bin(p)], None, str(p), kind="events", sensor=NMNIST_SHAPE)
    with open(p, "rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80":
        return _cifar_files([p], str(p))
    raise DataError(f"{p}: unknown data format (expected an MNIST IDX file or folder, an .npz "
                    f"with x and y, a CIFAR-10 python batch or folder, or an N-MNIST folder)")


def _labels(y, where) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels must be a 1-D integer array, got {y.dtype} {y.shape}")
    return y.astype(np.int64)


def _dtype_max(x) -> int | None:
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        return int(np.iinfo(x.dtype).max) if x.dtype == np.uint8 else int(x.max(initial=0))
    return None


def _builtin(name: str) -> Dataset:
    if name.startswith("digits"):
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise DataError("the 'digits' data set needs scikit-learn "
                            "(pip install 'neuroemu[demo]')") from exc
        d = load_digits()
        x = d.images.astype(np.uint8)
        y = d.target.astype(np.int64)
        sl = slice(0, DIGITS_TRAIN) if name == "digits-train" else slice(DIGITS_TRAIN, None)
        return Dataset(x[sl], y[sl], name, input_max=16,
                       info={"first_index": sl.start or 0})
    if name == "mnist":
        _need("mnist", "t10k-images-idx3-ubyte.gz")
        x, y = datasets.load_mnist()
        return Dataset(x, y.astype(np.int64), name, input_max=255)
    if name == "cifar10":
        _need("cifar10", "test_subset1000.npz")
        x, y = datasets.load_cifar10_subset()
        return Dataset(x, _labels(y, name), name, input_max=255)
    _need("nmnist")
    return _nmnist(datasets.data_path("nmnist"), "train" if name.endswith("train") else "test")


def _need(*parts):
    why = datasets.missing_reason(*parts)
    if why:
        raise DataError(why)


def _folder(p: Path, split: str | None) -> Dataset:
    names = {f.name for f in p.iterdir()}
    if "train1K.txt" in names or "test100.txt" in names:
        return _nmnist(p, split or "test")
    imgs = sorted(n for n in names if "images-idx3" in n)
    if imgs:
        pick = [n for n in imgs if n.startswith("t10k")] if split != "train" else \
            [n for n in imgs if n.startswith("train")]
        return _idx_images(p / (pick or imgs)[0])
    if "cifar-10-batches-py" in names:
        return _folder(p / "cifar-10-batches-py", split)
    batches = sorted(n for n in names if n.startswith("data_batch_"))
    if "test_batch" in names or batches:
        files = batches if split == "train" and batches else \
            (["test_batch"] if "test_batch" in names else batches)
        return _cifar_files([p / n for n in files], str(p))
    raise DataError(f"{p}: folder holds no recognised data (MNIST IDX files, CIFAR-10 python "
                    f"batches, or N-MNIST .bs2 files with train1K.txt/test100.txt)")


def _idx_images(p: Path) -> Dataset:
    x = datasets.read_idx(p)
    if x.ndim != 3:
        raise DataError(f"{p}: expected an IDX image file (N, H, W), found shape {x.shape}")
    lab = p.with_name(p.name.replace("images-idx3", "labels-idx1"))
    y = None
    if lab != p and lab.exists():
        y = datasets.read_idx(lab).astype(np.int64)
        if len(y) != len(x):
            raise DataError(f"{p}: {len(x)} images but {lab.name} holds {len(y)} labels")
    return Dataset(x, y, str(p), input_max=255)


def _nmnist(directory: Path, split: str) -> Dataset:
    from emulator.event_input import NMNIST_SHAPE, load_nmnist
    samples, labels = load_nmnist(directory, split)
    return Dataset(samples, labels.astype(np.int64), f"{directory} ({split})", kind="events",
                   sensor=NMNIST_SHAPE)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 python batches through a restricted unpickler (see the module docstring)

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _GuardedArray(np.ndarray):
    """What the unpickler's ``_reconstruct`` builds: an ndarray whose ``__setstate__`` (the
    pickle BUILD step that sets shape, dtype and data) checks the declared size against the
    memory budget and the bytes actually present, and refuses object arrays, before NumPy
    allocates anything."""

    def __setstate__(self, state):
        try:
            shape, dt, data = state[1], state[2], state[4]
            dt = np.dtype(dt)
            n = 1
            for s in shape:
                n *= int(s)
        except (TypeError, ValueError, IndexError) as exc:
            raise FileFormatError(f"malformed ndarray state ({exc})") from None
        if dt.hasobject:
            raise FileFormatError("refusing an object ndarray (it could hold anything)")
        check_budget(n * dt.itemsize, f"ndarray of declared shape {tuple(shape)} {dt}")
        if not isinstance(data, (bytes, bytearray)) or len(data) != n * dt.itemsize:
            raise FileFormatError(f"ndarray of shape {tuple(shape)} {dt} needs "
                                  f"{n * dt.itemsize} bytes of data")
        super().__setstate__(state)


def _guarded_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise FileFormatError("refusing to rebuild an ndarray subclass")
    return np.ndarray.__new__(_GuardedArray, (0,), dtype="u1")


class _CifarUnpickler(pickle.Unpickler):
    """Admits dicts/lists/bytes/str/ints (built by opcodes, no globals) and ndarray rebuilding
    (through :class:`_GuardedArray`)."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            if name == "_reconstruct":
                return _guarded_reconstruct
            return super().find_class(module, name)
        raise FileFormatError(f"refusing to unpickle {module}.{name}: a CIFAR-10 batch holds "
                              f"only dicts, lists, bytes, ints and NumPy arrays")


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch → ``(x uint8 (N, 3, 32, 32) NCHW, y int64 (N,))``."""
    path = Path(path)
    try:
        check_budget(path.stat().st_size, f"{path}: reading a CIFAR-10 batch")
        raw = path.read_bytes()
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except FileFormatError as exc:
        raise FileFormatError(f"{path}: {exc}") from None
    except BudgetError as exc:
        raise BudgetError(f"{path}: {exc}") from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError,
            AttributeError, IndexError, OverflowError, RecursionError, MemoryError,
            UnicodeError) as exc:
        raise FileFormatError(f"{path}: not a readable CIFAR-10 batch ({type(exc).__name__}: "
                              f"{exc})") from None
    if not isinstance(obj, dict):
        raise FileFormatError(f"{path}: a CIFAR-10 batch is a dict, found {type(obj).__name__}")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}
    data, labels = d.get("data"), d.get("labels", d.get("fine_labels"))
    if not isinstance(data, np.ndarray) or labels is None:
        raise FileFormatError(f"{path}: a CIFAR-10 batch needs 'data' (array) and 'labels'")
    data = np.asarray(data).view(np.ndarray)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise FileFormatError(f"{path}: 'data' must be uint8 (N, 3072), found {data.dtype} "
                              f"{data.shape}")
    if not isinstance(labels, (list, np.ndarray)) or \
            not all(isinstance(v, (int, np.integer)) for v in labels):
        raise FileFormatError(f"{path}: 'labels' must be a list of ints")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) != len(data):
        raise FileFormatError(f"{path}: {len(data)} images but {len(y)} labels")
    return data.reshape(-1, 3, 32, 32), y


def _cifar_files(files: list, source: str) -> Dataset:
    xs, ys = zip(*(read_cifar_batch(f) for f in files))
    return Dataset(np.concatenate(xs), np.concatenate(ys), source, input_max=255)
