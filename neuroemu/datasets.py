"""Finding and reading the data sets neuroemu works on.

The shared reference data lives outside the repository (``../shared/data`` beside the checkout);
:func:`data_dir` is the one place that knows where.  Set ``NEUROEMU_DATA`` to point elsewhere.

Readers here return NumPy arrays and never unpickle anything (``.npz`` with
``allow_pickle=False``).  The CIFAR-10 python batches are pickles; they are read in
:mod:`neuroemu.data` (:func:`~neuroemu.data.read_cifar_batch`) through a restricted unpickler
that admits only what a batch contains.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from hw_models.errors import DataError, FileFormatError
from hw_models.safeio import check_budget, load_numpy

ENV_VAR = "NEUROEMU_DATA"
_REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The shared data folder: ``$NEUROEMU_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return (_REPO_ROOT.parent / "shared" / "data").resolve()


def data_path(*parts: str) -> Path:
    """Path of a file inside :func:`data_dir` (it may not exist; callers check)."""
    return data_dir().joinpath(*parts)


def missing_reason(*parts: str) -> str | None:
    """``None`` if the shared file exists, otherwise a sentence saying what is missing and why."""
    p = data_path(*parts)
    if p.exists():
        return None
    return (f"shared data file {p} is absent (set {ENV_VAR} to the folder holding the "
            f"neuroemu reference data)")


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not, into an array of its stored dtype."""
    path = Path(path)
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    try:
        with _open_maybe_gzip(path) as fh:
            head = fh.read(4)
            if len(head) != 4 or head[0] != 0 or head[1] != 0 or head[2] not in dtypes:
                raise FileFormatError(f"{path}: not an IDX file (bad magic number {head!r})")
            ndim = head[3]
            dims = struct.unpack(f">{ndim}I", fh.read(4 * ndim))
            dtype = np.dtype(dtypes[head[2]])
            count = 1
            for d in dims:
                count *= d
            # the header's claim is checked before reading: a 16-byte header can declare 10^15
            check_budget(count * dtype.itemsize, f"{path}: IDX data of declared shape {dims}")
            raw = fh.read(count * dtype.itemsize)
            if fh.read(1):
                raise FileFormatError(f"{path}: IDX file has bytes beyond the {count} values "
                                      f"its header declares (shape {dims})")
    except (OSError, EOFError, struct.error, zlib.error) as exc:
        raise FileFormatError(f"{path}: cannot read IDX data ({exc})") from None
    if len(raw) != count * dtype.itemsize:
        raise FileFormatError(
            f"{path}: truncated IDX file: expected {count * dtype.itemsize} data bytes for "
            f"shape {dims}, found {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def load_mnist(directory: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test set as ``(x, y)``: x uint8 (N, 28, 28), y uint8 (N,)."""
    d = Path(directory) if directory is not None else data_path("mnist")
    x = read_idx(d / "t10k-images-idx3-ubyte.gz")
    y = read_idx(d / "t10k-labels-idx1-ubyte.gz")
    if len(x) != len(y):
        raise FileFormatError(f"{d}: {len(x)} images but {len(y)} labels")
    return x, y


def load_cifar10_subset(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The shared lossless CIFAR-10 subset: x uint8 (N, 3, 32, 32) NCHW, y uint8 (N,)."""
    p = Path(path) if path is not None else data_path("cifar10", "test_subset1000.npz")
    return load_npz(p)


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """An ``.npz`` holding ``x`` (and optionally ``y``); object arrays are refused."""
    path = Path(path)
    z = load_numpy(path)  # no pickles, declared sizes budgeted (hw_models.safeio)
    if not isinstance(z, dict) or "x" not in z:
        raise DataError(f"{path}: an .npz data file needs an array 'x' "
                        f"(found {sorted(z) if isinstance(z, dict) else 'one bare array'})")
    x, y = z["x"], z.get("y")
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: x has {len(x)} samples but y has {len(y)}")
    return x, y
