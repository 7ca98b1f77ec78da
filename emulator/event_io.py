"""Readers for event-camera files: every reader returns one structured array of ``EVENT_DTYPE``.

``EVENT_DTYPE`` has fields ``t`` (int64, microseconds), ``x``, ``y`` (int16, pixel column and row)
and ``p`` (int8, polarity: 1 = ON / brightness increase, 0 = OFF).  Readers keep the file's
event order (all supported recordings are time-ordered) and never loop in Python per event.

Formats (the byte layouts implemented, each checked against a file in ``../shared/data``):

* **N-MNIST / ATIS binary** (``.bs2``, ``.bin``; Orchard et al. 2015): 5 bytes per event,
  ``byte0 = x``, ``byte1 = y``, ``byte2 bit 7 = polarity``, timestamp = bits 22..0 of
  ``byte2..byte4`` read big-endian, in µs.  A record with ``y == 240`` is a *timestamp overflow*
  marker in the later ATIS files (N-Caltech101): it is not an event; every later timestamp is
  increased by ``NMNIST_OVERFLOW_US`` (2**13 µs, the increment of the dataset authors' own reader).
  Checked against ``nmnist/*.bs2`` (1,100 files, 1,069–7,152 events, x, y < 34, no overflow
  markers), ``dvs_gesture/*.bs2`` (10 files, 63,471–181,179 events, x, y < 128) and
  ``event_samples/sample_nmnist.bin`` (4,325 events).
* **AEDAT 2.0** (``.aedat``, jAER): text header lines starting with ``#`` (first line
  ``#!AER-DAT2.0``), then big-endian pairs ``int32 address, int32 timestamp (µs)``.  The address
  layout depends on the ``# AEChip:`` header line:

  - DVS128 (default): ``x = (a >> 1) & 0x7F``, ``y = (a >> 8) & 0x7F``, ``p = 1 - (a & 1)``
    (jAER: bit 0 set means OFF), bit 15 set = external event (dropped); sensor 128 x 128.
  - DAVIS (chip class name contains ``Davis``): bit 31 set = APS/IMU sample (dropped),
    bit 10 set = external event (dropped), ``x = (a >> 12) & 0x3FF``, ``y = (a >> 22) & 0x1FF``,
    ``p = (a >> 11) & 1``; sensor from the chip name (240 x 180, 346 x 260, 640 x 480).

  Coordinates are the raw address fields (jAER's display flips x for DVS128; we do not).
  ``event_samples/sample_aedat_header.aedat`` is a DAVIS346 header with an empty payload
  (0 events).
* **AEDAT 4.0** (``.aedat4``, iniVation DV): ``#!AER-DAT4.0\\r\\n``; int32 LE size of the IO
  header; the IO header, a FlatBuffer (identifier ``IOHE``) with fields 0 ``compression``
  (int32: 0 none, 1 LZ4, 2 LZ4 high, 3 zstd, 4 zstd high), 1 ``dataTablePosition`` (int64, -1 if
  absent) and 2 ``infoNode`` (XML string naming each stream's ``typeIdentifier`` and sensor
  ``sizeX``/``sizeY``); then packets ``int32 streamId, int32 size, size bytes`` (compressed as the
  header says) up to the data table.  A polarity packet is a size-prefixed FlatBuffer with
  identifier ``EVTS`` whose table field 0 is a vector of 16-byte structs
  ``int64 t, int16 x, int16 y, uint8 polarity, 3 pad``.  Only ``EVTS`` streams are read; frames,
  IMU and triggers are skipped.  Checked against ``event_samples/sample.aedat4`` (DVXplorer,
  320 x 240, LZ4).
* **NumPy** ``.npy`` / ``.npz``: a structured array with fields t, x, y, p, or a plain (N, 4)
  integer array with columns (t, x, y, p); ``.npz`` takes the array ``events`` (or the only one).
  Never unpickled.
* **Prophesee DAT** (``.dat``, N-CARS): header lines starting with ``%``, then (version >= 2) one
  byte event type and one byte event size (8), then little-endian ``uint32 t, uint32 w`` with
  ``x = w & 0x3FFF``, ``y = (w >> 14) & 0x3FFF``, ``p = (w >> 28) & 0xF``.  Checked against
  ``event_samples/sample_ncars.dat``.

Malformed or truncated files raise :class:`~hw_models.errors.FileFormatError` naming the file and
the byte offset at which the problem lies.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np

from hw_models.errors import FileFormatError
from hw_models.safeio import check_budget, load_numpy

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])

NMNIST_RECORD_BYTES = 5
NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_US = 1 << 13

AEDAT2_MAGIC = b"#!AER-DAT2.0"
AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
DAT_EVENT_BYTES = 8

_DAVIS_SIZES = {"240": (180, 240), "346": (260, 346), "640": (480, 640)}  # chip -> (H, W)
_AEDAT4_COMPRESSION = {0: "none", 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}
# AEDAT 4 polarity event struct as stored in the EVTS FlatBuffer vector (16 bytes, aligned).
_AEDAT4_EVENT = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1"), ("_", "V3")])


def empty_events(n: int = 0) -> np.ndarray:
    """A zeroed event array of length ``n``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def make_events(t, x, y, p) -> np.ndarray:
    """Pack four equal-length columns into an ``EVENT_DTYPE`` array (values are not checked)."""
    t = np.asarray(t)
    ev = np.empty(t.shape[0], dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return ev


def _read_bytes(path: Path) -> bytes:
    try:
        check_budget(path.stat().st_size, f"{path}: reading an event file")
        return path.read_bytes()
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read event file ({exc})") from exc


# ---------------------------------------------------------------- N-MNIST / ATIS binary


def read_nmnist_bin(path: str | os.PathLike) -> np.ndarray:
    """Events of an N-MNIST / ATIS ``.bs2``/``.bin`` file (5 bytes per event, see module doc)."""
    path = Path(path)
    raw = _read_bytes(path)
    n, rest = divmod(len(raw), NMNIST_RECORD_BYTES)
    if rest:
        raise FileFormatError(
            f"{path}: truncated N-MNIST/ATIS file: {len(raw)} bytes is not a multiple of "
            f"{NMNIST_RECORD_BYTES}; the incomplete record starts at byte offset "
            f"{n * NMNIST_RECORD_BYTES} ({rest} of {NMNIST_RECORD_BYTES} bytes present)")
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(n, NMNIST_RECORD_BYTES)
    b2 = rec[:, 2].astype(np.int64)
    t = ((b2 & 0x7F) << 16) | (rec[:, 3].astype(np.int64) << 8) | rec[:, 4]
    overflow = rec[:, 1] == NMNIST_OVERFLOW_Y
    if overflow.any():
        # Each marker adds the increment to every record after it (and is itself dropped).
        t = t + np.cumsum(overflow, dtype=np.int64) * NMNIST_OVERFLOW_US
        keep = ~overflow
        rec, t, b2 = rec[keep], t[keep], b2[keep]
    return make_events(t, rec[:, 0], rec[:, 1], b2 >> 7)


# ---------------------------------------------------------------- AEDAT 2.0


def _split_hash_header(raw: bytes, path: Path) -> tuple[list[str], int]:
    """Header lines starting with '#' and the byte offset where the binary payload starts."""
    lines, pos = [], 0
    while pos < len(raw) and raw[pos:pos + 1] == b"#":
        end = raw.find(b"\n", pos)
        if end < 0:
            raise FileFormatError(f"{path}: AEDAT header line at byte offset {pos} never ends "
                                  f"(no newline before end of file)")
        lines.append(raw[pos:end].rstrip(b"\r").decode("latin-1"))
        pos = end + 1
    return lines, pos


def read_aedat2(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Polarity events of an AEDAT 2.0 file and the sensor size (H, W); layout in module doc."""
    path = Path(path)
    raw = _read_bytes(path)
    if not raw.startswith(AEDAT2_MAGIC):
        raise FileFormatError(f"{path}: not an AEDAT 2.0 file (byte offset 0: expected "
                              f"{AEDAT2_MAGIC!r}, found {raw[:len(AEDAT2_MAGIC)]!r})")
    lines, start = _split_hash_header(raw, path)
    chip = ""
    for line in lines:
        m = re.match(r"#\s*AEChip:\s*(\S+)", line)
        if m:
            chip = m.group(1)
    payload = len(raw) - start
    n, rest = divmod(payload, 8)
    if rest:
        raise FileFormatError(
            f"{path}: truncated AEDAT 2.0 payload: {payload} bytes after the header (which ends "
            f"at byte offset {start}) is not a multiple of 8; the incomplete record starts at "
            f"byte offset {start + n * 8}")
    rec = np.frombuffer(raw, dtype=">u4", count=2 * n, offset=start).reshape(n, 2)
    a = rec[:, 0].astype(np.int64)
    t = rec[:, 1].astype(np.int64)
    davis = re.search(r"davis(\d+)", chip, re.IGNORECASE)
    if davis:
        keep = ((a >> 31) & 1 == 0) & ((a >> 10) & 1 == 0)
        x, y, p = (a >> 12) & 0x3FF, (a >> 22) & 0x1FF, (a >> 11) & 1
        size = _DAVIS_SIZES.get(davis.group(1)[:3])
    else:
        keep = (a >> 15) & 1 == 0
        x, y, p = (a >> 1) & 0x7F, (a >> 8) & 0x7F, 1 - (a & 1)
        size = (128, 128)
    return make_events(t[keep], x[keep], y[keep], p[keep]), size


# ---------------------------------------------------------------- AEDAT 4.0 (FlatBuffers by hand)


class _FlatTable:
    """Minimal FlatBuffers table reader over ``buf`` (little-endian, as FlatBuffers always is).

    A buffer starts with a uint32 offset to the root table.  A table starts with an int32
    ``soffset``; its vtable is at ``table - soffset`` and holds uint16 ``vtable size``, uint16
    ``table size`` and one uint16 per field: the field's offset from the table start (0 = absent,
    default value applies).  A string/vector field holds a uint32 offset, relative to the field
    itself, to a uint32 element count followed by the elements.
    """

    def __init__(self, buf: bytes, pos: int, what: str, base: int):
        self.buf, self.pos, self.what, self.base = buf, pos, what, base
        self.vtable = pos - self._get("<i", pos)
        self.vsize = self._get("<H", self.vtable)
        if self.vsize < 4 or self.vsize % 2:
            raise FileFormatError(f"{what}: corrupt FlatBuffer vtable (size {self.vsize}) at byte "
                                  f"offset {base + self.vtable}")

    @classmethod
    def root(cls, buf: bytes, what: str, base: int) -> "_FlatTable":
        if len(buf) < 8:
            raise FileFormatError(f"{what}: FlatBuffer of {len(buf)} bytes is too short "
                                  f"(byte offset {base})")
        return cls(buf, struct.unpack_from("<I", buf, 0)[0], what, base)

    def _get(self, fmt: str, off: int):
        if off < 0 or off + struct.calcsize(fmt) > len(self.buf):
            raise FileFormatError(f"{self.what}: FlatBuffer reference points outside its "
                                  f"{len(self.buf)}-byte buffer (byte offset {self.base + off})")
        return struct.unpack_from(fmt, self.buf, off)[0]

    def field_pos(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot + 2 > self.vsize:
            return None
        off = self._get("<H", self.vtable + slot)
        return self.pos + off if off else None

    def scalar(self, index: int, fmt: str, default):
        p = self.field_pos(index)
        return default if p is None else self._get(fmt, p)

    def vector(self, index: int) -> tuple[int, int] | None:
        """(position of the first element, element count) of a vector/string field."""
        p = self.field_pos(index)
        if p is None:
            return None
        start = p + self._get("<I", p)
        return start + 4, self._get("<I", start)


def _aedat4_decompressor(code: int, path: Path):
    kind = _AEDAT4_COMPRESSION.get(code)
    if kind is None:
        raise FileFormatError(f"{path}: unknown AEDAT 4 compression code {code} in the IO header "
                              f"(known: 0 none, 1-2 LZ4, 3-4 zstd)")
    if kind == "none":
        return lambda b: b
    if kind == "lz4":
        try:
            import lz4.frame as lz4f
        except ImportError as exc:  # pragma: no cover - lz4 is a dependency of the extra
            raise FileFormatError(f"{path}: AEDAT 4 file is LZ4-compressed; install the 'lz4' "
                                  f"package (pip install neuroemu[aedat])") from exc
        return lz4f.decompress
    try:
        import zstandard
    except ImportError as exc:
        raise FileFormatError(f"{path}: AEDAT 4 file is zstd-compressed; install the "
                              f"'zstandard' package (pip install zstandard)") from exc
    dctx = zstandard.ZstdDecompressor()
    return lambda b: dctx.decompressobj().decompress(b)


def _aedat4_streams(xml: str) -> tuple[set[int], tuple[int, int] | None]:
    """Stream ids whose typeIdentifier is EVTS, and the sensor size (H, W) of the first one."""
    ids, size = set(), None
    for m in re.finditer(r'<node name="(\d+)" path="[^"]*/outInfo/\d+/">(.*?)</node>\s*</node>',
                         xml, re.DOTALL):
        body = m.group(2)
        if re.search(r'key="typeIdentifier"[^>]*>EVTS<', body):
            ids.add(int(m.group(1)))
            sx = re.search(r'key="sizeX"[^>]*>(\d+)<', body)
            sy = re.search(r'key="sizeY"[^>]*>(\d+)<', body)
            if size is None and sx and sy:
                size = (int(sy.group(1)), int(sx.group(1)))
    return ids, size


def read_aedat4(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Polarity events of an AEDAT 4.0 (DV) file and the sensor size (H, W); see module doc."""
    path = Path(path)
    raw = _read_bytes(path)
    if not raw.startswith(AEDAT4_MAGIC):
        raise FileFormatError(f"{path}: not an AEDAT 4.0 file (byte offset 0: expected "
                              f"{AEDAT4_MAGIC!r}, found {raw[:len(AEDAT4_MAGIC)]!r})")
    pos = len(AEDAT4_MAGIC)
    if pos + 4 > len(raw):
        raise FileFormatError(f"{path}: truncated AEDAT 4 file: IO header size missing at byte "
                              f"offset {pos}")
    hsize = struct.unpack_from("<i", raw, pos)[0]
    pos += 4
    if hsize < 8 or pos + hsize > len(raw):
        raise FileFormatError(f"{path}: bad AEDAT 4 IO header size {hsize} at byte offset "
                              f"{pos - 4} (file has {len(raw)} bytes)")
    head = raw[pos:pos + hsize]
    if head[4:8] != b"IOHE":
        raise FileFormatError(f"{path}: AEDAT 4 IO header at byte offset {pos} lacks the "
                              f"FlatBuffer identifier 'IOHE' (found {head[4:8]!r})")
    table = _FlatTable.root(head, str(path), pos)
    decompress = _aedat4_decompressor(table.scalar(0, "<i", 0), path)
    data_table = table.scalar(1, "<q", -1)
    info = table.vector(2)
    xml = head[info[0]:info[0] + info[1]].decode("utf-8", "replace") if info else ""
    event_ids, size = _aedat4_streams(xml)
    pos += hsize
    end = data_table if 0 <= data_table <= len(raw) else len(raw)
    chunks = []
    while pos < end:
        if pos + 8 > end:
            raise FileFormatError(f"{path}: truncated AEDAT 4 packet header at byte offset {pos}")
        stream, size_b = struct.unpack_from("<ii", raw, pos)
        if size_b < 0 or pos + 8 + size_b > end:
            raise FileFormatError(
                f"{path}: truncated or corrupt AEDAT 4 packet at byte offset {pos} (stream "
                f"{stream}, {size_b} bytes announced, {end - pos - 8} available)")
        if stream in event_ids:
            chunks.append(_aedat4_polarity_packet(raw[pos + 8:pos + 8 + size_b], decompress,
                                                  path, pos))
        pos += 8 + size_b
    if not chunks:
        return empty_events(), size
    return np.concatenate(chunks), size


def _aedat4_polarity_packet(blob: bytes, decompress, path: Path, offset: int) -> np.ndarray:
    what = f"{path}: AEDAT 4 packet at byte offset {offset}"
    try:
        buf = decompress(blob)
    except Exception as exc:  # the decompressors raise their own error types
        raise FileFormatError(f"{what}: cannot decompress ({exc})") from exc
    # DV writes size-prefixed buffers: uint32 size, then the buffer (identifier at its byte 4).
    if len(buf) >= 12 and buf[8:12] == b"EVTS":
        buf = buf[4:]
    elif buf[4:8] != b"EVTS":
        raise FileFormatError(f"{what}: not a polarity-event packet (no 'EVTS' identifier)")
    vec = _FlatTable.root(buf, what, 0).vector(0)
    if vec is None:
        return empty_events()
    first, n = vec
    if first + n * _AEDAT4_EVENT.itemsize > len(buf):
        raise FileFormatError(f"{what}: event vector of {n} events overruns the "
                              f"{len(buf)}-byte packet")
    rec = np.frombuffer(buf, dtype=_AEDAT4_EVENT, count=n, offset=first)
    return make_events(rec["t"], rec["x"], rec["y"], rec["p"] != 0)


# ---------------------------------------------------------------- NumPy arrays


def events_from_array(arr: np.ndarray, what: str = "array") -> np.ndarray:
    """Convert a structured (t, x, y, p) or plain (N, 4) integer array to ``EVENT_DTYPE``."""
    arr = np.asarray(arr)
    if arr.dtype.names:
        missing = {"t", "x", "y", "p"} - set(arr.dtype.names)
        if missing or arr.ndim != 1:
            raise FileFormatError(f"{what}: a structured event array needs 1-D fields t, x, y, p "
                                  f"(found {arr.dtype.names}, shape {arr.shape})")
        cols = [arr[k] for k in ("t", "x", "y", "p")]
    else:
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise FileFormatError(f"{what}: a plain event array must have shape (N, 4) with "
                                  f"columns t, x, y, p (found {arr.shape})")
        cols = [arr[:, i] for i in range(4)]
    for name, c in zip("txyp", cols):
        if not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.bool_)):
            if not np.issubdtype(c.dtype, np.floating) or not np.all(c == np.round(c)):
                raise FileFormatError(f"{what}: column {name} must hold integers "
                                      f"(dtype {c.dtype})")
    limits = {"x": np.iinfo(np.int16), "y": np.iinfo(np.int16)}
    for name, c in zip("xy", cols[1:3]):
        if c.size and (c.min() < limits[name].min or c.max() > limits[name].max):
            raise FileFormatError(f"{what}: {name} outside the int16 range")
    if cols[3].size and not np.isin(cols[3], (0, 1)).all():
        raise FileFormatError(f"{what}: polarity must be 0 or 1 (found "
                              f"{np.unique(cols[3])[:5].tolist()})")
    return make_events(*cols)


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """Events from ``.npy`` or ``.npz`` (array ``events`` or the single array); no pickles."""
    path = Path(path)
    obj = load_numpy(path)  # no pickles, declared sizes budgeted (hw_models.safeio)
    if isinstance(obj, dict):
        names = list(obj)
        key = "events" if "events" in names else (names[0] if len(names) == 1 else None)
        if key is None:
            raise FileFormatError(f"{path}: .npz needs an array 'events' or exactly one "
                                  f"array (found {sorted(names)})")
        obj = obj[key]
    return events_from_array(obj, str(path))


def save_npy(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write events as a structured ``.npy`` file readable by :func:`read_npy`."""
    np.save(Path(path), events_from_array(events), allow_pickle=False)


# ---------------------------------------------------------------- Prophesee DAT


def read_prophesee_dat(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """CD events of a Prophesee ``.dat`` file and the sensor size if the header gives it."""
    path = Path(path)
    raw = _read_bytes(path)
    lines, pos = [], 0
    while pos < len(raw) and raw[pos:pos + 1] == b"%":
        end = raw.find(b"\n", pos)
        if end < 0:
            raise FileFormatError(f"{path}: DAT header line at byte offset {pos} never ends")
        lines.append(raw[pos:end].decode("latin-1"))
        pos = end + 1
    if not lines:
        raise FileFormatError(f"{path}: not a Prophesee DAT file (no '%' header at byte offset 0)")
    header = "\n".join(lines)
    version = re.search(r"%\s*Version\s+(\d+)", header)
    if version is None or int(version.group(1)) >= 2:
        if pos + 2 > len(raw):
            raise FileFormatError(f"{path}: truncated DAT file: event type/size bytes missing at "
                                  f"byte offset {pos}")
        ev_size = raw[pos + 1]
        if ev_size != DAT_EVENT_BYTES:
            raise FileFormatError(f"{path}: unsupported DAT event size {ev_size} at byte offset "
                                  f"{pos + 1} (expected {DAT_EVENT_BYTES})")
        pos += 2
    n, rest = divmod(len(raw) - pos, DAT_EVENT_BYTES)
    if rest:
        raise FileFormatError(f"{path}: truncated DAT payload: the incomplete record starts at "
                              f"byte offset {pos + n * DAT_EVENT_BYTES}")
    rec = np.frombuffer(raw, dtype="<u4", count=2 * n, offset=pos).reshape(n, 2)
    w = rec[:, 1].astype(np.int64)
    p = (w >> 28) & 0xF
    if n and p.max() > 1:
        bad = int(np.argmax(p > 1))
        raise FileFormatError(f"{path}: DAT polarity {p[bad]} (not 0/1) in the record at byte "
                              f"offset {pos + bad * DAT_EVENT_BYTES}")
    hh = re.search(r"%\s*[Hh]eight\s+(\d+)", header)
    ww = re.search(r"%\s*[Ww]idth\s+(\d+)", header)
    size = (int(hh.group(1)), int(ww.group(1))) if hh and ww else None
    return make_events(rec[:, 0], w & 0x3FFF, (w >> 14) & 0x3FFF, p), size


# ---------------------------------------------------------------- dispatcher


def read_events(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read any supported event file: ``(events, sensor size (H, W) or None)``.

    The format is chosen from the file's magic bytes where it has one (AEDAT 2/4, NumPy, DAT
    ``%`` header), else from the extension (``.bs2``/``.bin`` are N-MNIST/ATIS; their sensor
    size is not stored in the file, so it is ``None``).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read event file ({exc})") from exc
    ext = path.suffix.lower()
    if magic.startswith(b"#!AER-DAT4.0"):
        return read_aedat4(path)
    if magic.startswith(b"#!AER-DAT"):
        if not magic.startswith(AEDAT2_MAGIC):
            raise FileFormatError(f"{path}: unsupported AEDAT version {magic[:12]!r} at byte "
                                  f"offset 0 (supported: 2.0, 4.0)")
        return read_aedat2(path)
    if magic.startswith(b"\x93NUMPY") or magic.startswith(b"PK\x03\x04") or ext in (".npy",
                                                                                    ".npz"):
        return read_npy(path), None
    if ext == ".dat" or magic.startswith(b"%"):
        return read_prophesee_dat(path)
    if ext in (".bs2", ".bin"):
        return read_nmnist_bin(path), None
    if ext in (".aedat", ".aedat4"):
        raise FileFormatError(f"{path}: extension {ext} but no AEDAT magic at byte offset 0 "
                              f"(found {magic[:12]!r})")
    raise FileFormatError(f"{path}: unknown event file type (extension {ext!r}; supported: .bs2, "
                          f".bin, .aedat, .aedat4, .npy, .npz, .dat)")
