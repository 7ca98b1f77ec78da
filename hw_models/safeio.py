"""Untrusted files in, results out: the one place that states how neuroemu reads and writes.

Every reader of a file a user hands in (network, result and sweep HDF5, Keras ``.h5``/``.keras``,
NIR, IDX, CIFAR batches, ONNX initializers) goes through these helpers, and so does every
allocation whose size comes from a file or an option (engine buffers, rasters, ``--steps``):

* :func:`open_h5` opens HDF5 read-only and then :func:`check_h5_links` walks every link once:
  an **external link** (a pointer into another file), a **dangling soft link**, a dataset with
  **external raw storage** or a **virtual dataset** (both read other files) is refused before a
  byte of data is read.  Soft links inside the file are plain aliases and are allowed.
* :func:`read_dataset` checks a dataset's *declared* size (shape × item size) against the memory
  budget and its dtype against what the caller expects *before* reading it; compressed chunks
  can declare terabytes in a few kilobytes.
* :func:`read_zip_member` checks a zip member's declared inflated size against the budget and a
  compression-ratio limit (a zip bomb), and reads no more than it declared.
* :func:`check_budget` is the single budget check: it raises :class:`BudgetError` saying what
  would be needed and how to raise the budget (``NEUROEMU_MEMORY_BUDGET``, bytes or ``8G``;
  default half the physical memory).
* :func:`loads_json` turns a JSON text from a file into Python, refusing deep nesting
  (``RecursionError``) and malformed text with a :class:`FileFormatError`.

Outputs (see :func:`check_output`, :func:`atomic_path`, :func:`sweep_stale`):

* an output is never the same file as an input (same path, a symlink to it, or a hard link:
  compared by device and inode) and never an existing directory;
* every file is written to a temporary ``.<name>.<pid>.<random>.tmp`` beside the target and
  renamed into place only when complete; the temporary is removed on every failure path,
  ``KeyboardInterrupt`` included, and a failed rename leaves the old target untouched;
* temporaries left by a killed process (its pid no longer alive) are swept by the next writer of
  the same target.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import BudgetError, DataError, FileFormatError

BUDGET_ENV = "NEUROEMU_MEMORY_BUDGET"
# A zip member may inflate this much beyond its compressed size before it counts as a bomb
# (real Keras weight files compress by 1.0-1.5x; deflate's ceiling is about 1032x) ...
ZIP_MAX_RATIO = 100
# ... unless it is small anyway.
ZIP_SMALL = 64 * 2**20
# JSON nesting deeper than this is refused (a Keras config nests about 10 deep).
JSON_MAX_DEPTH = 200

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def memory_budget() -> int:
    """Bytes one allocation driven by a file or an option may take: ``$NEUROEMU_MEMORY_BUDGET``
    (an integer with an optional K/M/G/T suffix), else half the physical memory."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if not text:
        return _physical_memory() // 2
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text, re.IGNORECASE)
    if not m:
        raise DataError(f"{BUDGET_ENV}={text!r}: expected bytes, e.g. 4G, 512M or 1000000")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def check_budget(nbytes, what: str, budget: int | None = None) -> int:
    """Raise :class:`BudgetError` if ``nbytes`` (may be a float or a huge int) exceeds the
    budget; returns ``int(nbytes)``.  ``what`` names the allocation and its cause."""
    budget = memory_budget() if budget is None else int(budget)
    if not nbytes <= budget:  # also refuses NaN
        if not np.isfinite(float(nbytes)):
            raise BudgetError(f"{what}: the size to allocate is not a finite number ({nbytes})")
        raise BudgetError(f"{what} would need {human_bytes(float(nbytes))}, more than the memory "
                          f"budget of {human_bytes(budget)} (a damaged file or an option too "
                          f"large? to allow it, set {BUDGET_ENV}, e.g. "
                          f"{BUDGET_ENV}={int(float(nbytes) // 2**30) + 1}G)")
    return int(nbytes)


def array_bytes(shape, dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` as an exact Python int (no overflow)."""
    n = 1
    for s in shape:
        n *= int(s)
    return n * np.dtype(dtype).itemsize


# ---- HDF5 ---------------------------------------------------------------------------------------

def open_h5(source, what: str = "HDF5", name=None):
    """Open ``source`` (a path or a binary file object) read-only as HDF5 and check its links
    (:func:`check_h5_links`).  A missing, truncated or corrupt file, or one that points into
    other files, raises :class:`FileFormatError` naming it (``name``, default ``source``)."""
    import h5py
    name = source if name is None else name
    if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
        raise FileFormatError(f"{name}: no such {what} file")
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        raise FileFormatError(f"{name}: is a directory, not a {what} file")
    try:
        f = h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{name}: not a readable HDF5 {what} file - truncated or corrupt "
                              f"(an interrupted copy?); regenerate it ({exc})") from None
    try:
        check_h5_links(f, name)
    except BaseException:
        f.close()
        raise
    return f


def check_h5_links(f, name) -> None:
    """Refuse an HDF5 file that reads other files or has broken links: external links, dangling
    soft links, external raw storage, virtual datasets.  Visits each link once (C-level walk,
    hard-link cycles are visited once)."""
    import h5py
    bad: list = []

    def visit(path, link):
        if isinstance(link, h5py.ExternalLink):
            bad.append(f"/{path} is an external link to {link.filename}:{link.path}")
        elif isinstance(link, h5py.SoftLink):
            try:
                target = f.get(path)
            except (KeyError, RuntimeError, OSError, RecursionError):
                target = None
            if target is None:
                bad.append(f"/{path} is a soft link to {link.path}, which does not exist")
        return None if len(bad) < 3 else True

    try:
        f.visititems_links(visit)
        if not bad:
            f.visititems(lambda path, obj: _check_storage(path, obj, bad))
    except FileFormatError:
        raise
    except (KeyError, RuntimeError, OSError, ValueError, TypeError, RecursionError) as exc:
        raise FileFormatError(f"{name}: damaged HDF5 structure ({type(exc).__name__}: "
                              f"{exc})") from None
    if bad:
        raise FileFormatError(f"{name}: refusing an HDF5 file that points outside itself or "
                              f"has broken links: {'; '.join(bad)}")


def _check_storage(path, obj, bad):
    import h5py
    if isinstance(obj, h5py.Dataset):
        if obj.is_virtual:
            bad.append(f"/{path} is a virtual dataset (it reads other files)")
        elif obj.id.get_create_plist().get_external_count():
            bad.append(f"/{path} keeps its data in an external raw file")
    return None if len(bad) < 3 else True


def read_dataset(ds, what: str, kinds: str = "iufb", budget: int | None = None) -> np.ndarray:
    """Read dataset ``ds`` after checking its declared dtype kind (``kinds``: NumPy kind
    letters) and size against the budget.  Errors name ``what``."""
    try:
        dt, shape = ds.dtype, ds.shape
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise FileFormatError(f"{what}: unreadable dataset header ({exc})") from None
    if shape is None:
        raise FileFormatError(f"{what}: empty (null) dataset")
    if dt.kind not in kinds or dt.fields is not None or dt.subdtype is not None:
        raise FileFormatError(f"{what}: stored as dtype {dt}, expected "
                              f"{_kinds_text(kinds)}")
    check_budget(array_bytes(shape, dt), f"{what} (declared shape {tuple(shape)}, {dt})",
                 budget)
    try:
        return ds[()]
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise FileFormatError(f"{what}: cannot read the data ({exc})") from None


def _kinds_text(kinds: str) -> str:
    names = {"i": "signed integers", "u": "unsigned integers", "f": "floats", "b": "booleans",
             "S": "byte strings", "O": "strings"}
    return " or ".join(names.get(k, k) for k in kinds)


# ---- zip ----------------------------------------------------------------------------------------

def read_zip_member(z, member: str, what: str, budget: int | None = None) -> bytes:
    """Bytes of zip member ``member`` after checking its declared inflated size against the
    budget and, beyond :data:`ZIP_SMALL`, a compression ratio of at most :data:`ZIP_MAX_RATIO`."""
    try:
        info = z.getinfo(member)
    except KeyError:
        raise FileFormatError(f"{what}: the zip archive has no member {member!r}") from None
    size = int(info.file_size)
    check_budget(size, f"{what}: zip member {member!r} (declared inflated size)", budget)
    if size > ZIP_SMALL and size > ZIP_MAX_RATIO * max(int(info.compress_size), 1):
        raise FileFormatError(f"{what}: zip member {member!r} inflates {info.compress_size} "
                              f"bytes to {human_bytes(size)} (ratio above {ZIP_MAX_RATIO}): "
                              f"refusing a zip bomb")
    try:
        with z.open(member) as fh:
            data = fh.read(size + 1)
    except (zlib.error, zipfile.BadZipFile, EOFError, OSError, NotImplementedError,
            RuntimeError, ValueError, struct.error) as exc:  # zipfile's many damage errors
        raise FileFormatError(f"{what}: zip member {member!r} is damaged ({type(exc).__name__}: "
                              f"{exc})") from None
    if len(data) != size:
        raise FileFormatError(f"{what}: zip member {member!r} holds {len(data)} bytes, its "
                              f"header declares {size}")
    return data


# ---- JSON ---------------------------------------------------------------------------------------

def loads_json(text, what: str, max_depth: int = JSON_MAX_DEPTH):
    """``json.loads`` for text from a file: malformed text, deep nesting or a non-UTF-8 byte
    string raise :class:`FileFormatError` naming ``what``."""
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        depth = _json_depth(text)
        if depth > max_depth:
            raise FileFormatError(f"{what}: JSON nested {depth} levels deep (limit {max_depth})")
        return json.loads(text)
    except FileFormatError:
        raise
    except (ValueError, TypeError, RecursionError) as exc:
        raise FileFormatError(f"{what}: not valid JSON ({type(exc).__name__}: {exc})") from None


def _json_depth(text: str) -> int:
    """Largest bracket nesting of ``text`` (strings skipped), without recursion."""
    # remove string literals (with escapes), then count brackets
    stripped = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    if len(stripped) > 4096 and "[" not in stripped and "{" not in stripped:
        return 0
    b = np.frombuffer(stripped.encode("utf-8", "replace"), np.uint8)
    step = (np.isin(b, (0x5B, 0x7B)).astype(np.int64) - np.isin(b, (0x5D, 0x7D)))
    return int(np.cumsum(step).max(initial=0))


# ---- outputs ------------------------------------------------------------------------------------

def same_file(a, b) -> bool:
    """True if paths ``a`` and ``b`` name one file: equal after resolving symlinks, or the same
    device and inode (hard links)."""
    try:
        pa, pb = Path(a), Path(b)
        if pa.resolve() == pb.resolve():
            return True
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except (OSError, ValueError, RuntimeError):
        return False


def check_output(out, inputs=(), what: str = "output") -> Path:
    """Refuse an output path that is an existing directory or the same file as any of
    ``inputs`` (paths; other values such as built-in data-set names are ignored)."""
    out = Path(out)
    if out.is_dir():
        raise DataError(f"{what} {out} is an existing directory; give a file name")
    for src in inputs:
        if isinstance(src, (str, os.PathLike)) and str(src) and same_file(out, src):
            raise DataError(f"{what} {out} is the same file as the input {src}; it would be "
                            f"overwritten - choose another output name")
    return out


_TMP_SUFFIX = ".tmp"


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def sweep_stale(path, own: bool = False) -> list:
    """Remove temporaries of ``path`` left by writers that no longer run (pid in the name not
    alive; old-style names without a pid when older than ten minutes); ``own`` also removes this
    process's (after an interrupt).  Returns those removed."""
    import time
    path = Path(path)
    removed = []
    try:
        cands = list(path.parent.glob(f"{glob_escape(_tmp_prefix(path))}*{_TMP_SUFFIX}"))
    except OSError:
        return removed
    for tmp in cands:
        rest = tmp.name[len(_tmp_prefix(path)):-len(_TMP_SUFFIX)]
        m = re.fullmatch(r"(\d+)\.[^.]+", rest)
        try:
            if m:
                pid = int(m.group(1))
                if (pid == os.getpid() and not own) or (pid != os.getpid() and _alive(pid)):
                    continue
            elif time.time() - tmp.stat().st_mtime < 600:
                continue
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            continue
    return removed


def glob_escape(s: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", s)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, inputs=(), what: str = "output"):
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block ends
    without error, remove it otherwise (any exception, ``KeyboardInterrupt`` included).  Checks
    :func:`check_output` against ``inputs`` first and sweeps stale temporaries of ``path``."""
    path = Path(path)
    check_output(path, inputs, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    tmp = None
    try:
        fd, name = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}.",
                                    suffix=_TMP_SUFFIX, dir=path.parent)
        tmp = Path(name)
        os.close(fd)
        yield tmp
        # mkstemp creates the file 0600; outputs are meant to be read by other tools and users
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
        tmp = None
    except IsADirectoryError:
        raise DataError(f"{what} {path} is an existing directory; give a file name") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


__all__ = ["BUDGET_ENV", "memory_budget", "check_budget", "array_bytes", "human_bytes",
           "open_h5", "check_h5_links", "read_dataset", "read_zip_member", "loads_json",
           "same_file", "check_output", "sweep_stale", "atomic_path", "check_int", "load_numpy"]


# ---- arguments ----------------------------------------------------------------------------------

def check_int(value, what: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an int if it is an integer (Python or NumPy, or an integral float such as
    ``64.0``) within ``[minimum, maximum]``; else :class:`DataError` naming ``what``.  ``2.5``,
    ``True`` and ``"8"`` are refused, never truncated."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok and isinstance(value, (float, np.floating)) and np.isfinite(value) \
            and float(value).is_integer():
        ok, value = True, int(value)
    if not ok:
        raise DataError(f"{what} must be an integer, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        rng = (f">= {minimum}" if maximum is None else
               f"in [{minimum}, {maximum}]" if minimum is not None else f"<= {maximum}")
        raise DataError(f"{what} must be {rng}, got {value}")
    return value


# ---- NumPy files --------------------------------------------------------------------------------

def _npy_header(fh, what: str) -> tuple:
    """``(shape, fortran, dtype)`` from a ``.npy`` header, parsed by NumPy's own literal-only
    parser; any failure of it, and object dtypes (a pickle), are a :class:`FileFormatError`."""
    from numpy.lib import format as npf
    try:
        version = npf.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npf.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # NumPy's header parser raises ValueError, SyntaxError, TokenError…
        raise FileFormatError(f"{what}: not a readable .npy array ({type(exc).__name__}: "
                              f"{exc})") from None
    if dtype.hasobject:
        raise FileFormatError(f"{what}: holds Python objects (a pickle); refusing to load it")
    return shape, fortran, dtype


def _read_npy_stream(fh, size: int, what: str, budget) -> np.ndarray:
    """One ``.npy`` array from an open binary stream of ``size`` bytes: header parsed by NumPy's
    own (literal-only) parser, object dtypes refused, declared size checked against the budget
    and against the bytes present, before the data is read."""
    shape, fortran, dtype = _npy_header(fh, what)
    nbytes = array_bytes(shape, dtype)
    check_budget(nbytes, f"{what}: array of declared shape {shape} {dtype}", budget)
    data = fh.read(nbytes + 1)
    if len(data) != nbytes:
        raise FileFormatError(f"{what}: array of shape {shape} {dtype} needs {nbytes} data "
                              f"bytes, the file holds {len(data)}")
    arr = np.frombuffer(data, dtype=dtype)
    return (arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)).copy()


def npy_layout(path, what: str | None = None) -> tuple:
    """``(shape, dtype, data offset)`` of a plain C-ordered ``.npy`` file, checked as
    :func:`load_numpy` checks it (literal header, no objects, all declared bytes present)
    without reading the data — for :func:`read_npy_rows`."""
    path = Path(path)
    what = str(path) if what is None else what
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise FileFormatError(f"{what}: cannot read ({type(exc).__name__}: {exc})") from None
    with fh:
        shape, fortran, dtype = _npy_header(fh, what)
        offset = fh.tell()
    if fortran and len(shape) > 1:
        raise FileFormatError(f"{what}: Fortran-ordered; rows cannot be read in place (save it "
                              f"with np.save(np.ascontiguousarray(x)))")
    if len(shape) < 1:
        raise FileFormatError(f"{what}: a 0-d array has no rows")
    nbytes = array_bytes(shape, dtype)
    if path.stat().st_size < offset + nbytes:
        raise FileFormatError(f"{what}: array of shape {shape} {dtype} needs {nbytes} data "
                              f"bytes, the file holds {path.stat().st_size - offset}")
    return tuple(int(v) for v in shape), dtype, int(offset)


def read_npy_rows(path, a: int, b: int, layout: tuple | None = None, what: str | None = None,
                  budget: int | None = None) -> np.ndarray:
    """Rows ``a:b`` of a ``.npy`` file (:func:`npy_layout` rules), reading only those bytes."""
    path = Path(path)
    what = str(path) if what is None else what
    shape, dtype, offset = layout if layout is not None else npy_layout(path, what)
    if not 0 <= a <= b <= shape[0]:
        raise DataError(f"{what}: rows [{a}, {b}) outside the {shape[0]} the file holds")
    row = array_bytes(shape[1:], dtype)
    check_budget(row * (b - a), f"{what}: rows [{a}, {b})", budget)
    try:
        with open(path, "rb") as fh:
            fh.seek(offset + a * row)
            data = fh.read(row * (b - a))
    except OSError as exc:
        raise FileFormatError(f"{what}: cannot read ({type(exc).__name__}: {exc})") from None
    if len(data) != row * (b - a):
        raise FileFormatError(f"{what}: rows [{a}, {b}) are not all in the file (it changed?)")
    return np.frombuffer(data, dtype=dtype).reshape((b - a,) + tuple(shape[1:])).copy()


def load_numpy(path, what: str | None = None, budget: int | None = None):
    """A ``.npy`` file as an array, or a ``.npz`` file as ``{name: array}`` — never unpickling,
    every member's declared size budgeted (:func:`read_zip_member` rules for the archive) and
    checked against the bytes present.  Any damage is a :class:`FileFormatError`."""
    import zipfile
    path = Path(path)
    what = str(path) if what is None else what
    try:
        if zipfile.is_zipfile(path):
            out = {}
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if not info.filename.endswith(".npy"):
                        continue
                    raw = read_zip_member(z, info.filename, what, budget)
                    out[info.filename[:-4]] = _read_npy_stream(
                        __import__("io").BytesIO(raw), len(raw),
                        f"{what}: member {info.filename!r}", budget)
            return out
        with open(path, "rb") as fh:
            return _read_npy_stream(fh, path.stat().st_size, what, budget)
    except (FileFormatError, BudgetError):
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, NotImplementedError,
            RuntimeError) as exc:  # zipfile raises several kinds on damaged archives
        raise FileFormatError(f"{what}: cannot read NumPy file ({type(exc).__name__}: "
                              f"{exc})") from None
