"""Event-file readers on the shared sample files, truncated copies and garbage."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from emulator import event_io
from emulator.event_io import EVENT_DTYPE, read_events
from hw_models.errors import FileFormatError
from tests.conftest import require_data


def _check_common(ev, width, height):
    assert ev.dtype == EVENT_DTYPE
    assert ev["x"].min() >= 0 and ev["x"].max() < width
    assert ev["y"].min() >= 0 and ev["y"].max() < height
    assert set(np.unique(ev["p"]).tolist()) <= {0, 1}
    assert np.all(np.diff(ev["t"]) >= 0)


@pytest.mark.parametrize("parts", [("nmnist", "1.bs2"), ("nmnist", "60001.bs2"),
                                   ("event_samples", "sample_nmnist.bin")])
def test_nmnist_files(parts):
    path = require_data(*parts)
    ev, size = read_events(path)
    assert size is None
    assert len(ev) == path.stat().st_size // 5
    _check_common(ev, 34, 34)
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}


def test_nmnist_first_event_decoded_by_hand():
    path = require_data("nmnist", "1.bs2")
    b = path.read_bytes()[:5]
    ev = event_io.read_nmnist_bin(path)
    t = ((b[2] & 0x7F) << 16) | (b[3] << 8) | b[4]
    assert (ev["x"][0], ev["y"][0], ev["p"][0], ev["t"][0]) == (b[0], b[1], b[2] >> 7, t)


def test_sample_nmnist_count():
    ev, _ = read_events(require_data("event_samples", "sample_nmnist.bin"))
    assert len(ev) == 4325


@pytest.mark.parametrize("name", ["1.bs2", "10.bs2"])
def test_dvs_gesture_clips(name):
    path = require_data("dvs_gesture", name)
    ev, _ = read_events(path)
    assert len(ev) == path.stat().st_size // 5
    assert len(ev) > 60000
    _check_common(ev, 128, 128)


def test_nmnist_truncated_names_offset(tmp_path):
    raw = require_data("nmnist", "1.bs2").read_bytes()
    bad = tmp_path / "cut.bs2"
    bad.write_bytes(raw[:-2])
    n_full = (len(raw) - 2) // 5
    with pytest.raises(FileFormatError, match=rf"cut\.bs2.*offset {n_full * 5}"):
        read_events(bad)


def test_nmnist_overflow_marker(tmp_path):
    def rec(x, y, p, t):
        return bytes([x, y, (p << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF])
    f = tmp_path / "ovf.bin"
    f.write_bytes(rec(1, 2, 1, 8000) + rec(0, 240, 0, 0) + rec(3, 4, 0, 10))
    ev = event_io.read_nmnist_bin(f)
    assert ev["t"].tolist() == [8000, 10 + event_io.NMNIST_OVERFLOW_US]
    assert ev["x"].tolist() == [1, 3] and ev["p"].tolist() == [1, 0]


def test_aedat2_header_sample():
    path = require_data("event_samples", "sample_aedat_header.aedat")
    ev, size = read_events(path)
    assert len(ev) == 0 and ev.dtype == EVENT_DTYPE
    assert size == (260, 346)          # header says AEChip ...Davis346red


def _aedat2_bytes(records, chip="ch.unizh.ini.jaer.chip.retina.DVS128"):
    head = f"#!AER-DAT2.0\r\n# AEChip: {chip}\r\n".encode()
    return head + b"".join(struct.pack(">II", a, t) for a, t in records)


def test_aedat2_dvs128_layout_and_truncation(tmp_path):
    # x=5, y=7, bit0=0 (ON); x=127, y=0, bit0=1 (OFF); an external event (bit 15) is dropped
    recs = [((7 << 8) | (5 << 1) | 0, 100), ((0 << 8) | (127 << 1) | 1, 250), (1 << 15, 300)]
    f = tmp_path / "a.aedat"
    raw = _aedat2_bytes(recs)
    f.write_bytes(raw)
    ev, size = read_events(f)
    assert size == (128, 128)
    assert ev.tolist() == [(100, 5, 7, 1), (250, 127, 0, 0)]
    f.write_bytes(raw[:-3])
    start = len(raw) - 24
    with pytest.raises(FileFormatError, match=rf"offset {start + 16}"):
        read_events(f)


def test_aedat2_davis_layout(tmp_path):
    a = (200 << 22) | (300 << 12) | (1 << 11)
    aps = (1 << 31) | (3 << 22)
    f = tmp_path / "d.aedat"
    f.write_bytes(_aedat2_bytes([(a, 5), (aps, 6)], chip="eu.seebetter.ini.chips.davis.Davis346red"))
    ev, size = read_events(f)
    assert size == (260, 346) and ev.tolist() == [(5, 300, 200, 1)]


def test_aedat4_sample():
    path = require_data("event_samples", "sample.aedat4")
    ev, size = read_events(path)
    assert size == (240, 320)
    assert len(ev) == 111954
    _check_common(ev, 320, 240)
    assert ev["t"][0] > 1_600_000_000_000_000          # absolute µs since the epoch (2020)


def test_aedat4_truncated_and_garbage(tmp_path):
    raw = require_data("event_samples", "sample.aedat4").read_bytes()
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(raw[:50000])
    with pytest.raises(FileFormatError, match=r"cut\.aedat4.*offset \d+"):
        read_events(cut)
    junk = tmp_path / "junk.aedat4"
    junk.write_bytes(b"this is no event file at all" * 10)
    with pytest.raises(FileFormatError, match=r"junk\.aedat4.*no AEDAT magic"):
        read_events(junk)
    fake = tmp_path / "fake.aedat4"          # right magic, garbage after it
    fake.write_bytes(event_io.AEDAT4_MAGIC + b"\xff\xff\x00\x00" + bytes(range(256)) * 4)
    with pytest.raises(FileFormatError, match=r"fake\.aedat4.*offset"):
        read_events(fake)
    # a corrupt packet payload (LZ4 frame garbled) names the packet offset
    hsize = struct.unpack_from("<i", raw, 14)[0]
    first = 18 + hsize
    bad = bytearray(raw)
    bad[first + 8:first + 40] = b"\x00" * 32
    broken = tmp_path / "broken.aedat4"
    broken.write_bytes(bytes(bad))
    with pytest.raises(FileFormatError, match=rf"offset {first}"):
        read_events(broken)


def test_prophesee_dat_sample():
    path = require_data("event_samples", "sample_ncars.dat")
    ev, _ = read_events(path)
    assert len(ev) == 2009
    _check_common(ev, 120, 100)                       # N-CARS crops are at most 120 x 100


def test_npy_round_trip(tmp_path):
    ev, _ = read_events(require_data("event_samples", "sample_nmnist.bin"))
    f = tmp_path / "ev.npy"
    event_io.save_npy(f, ev)
    back, size = read_events(f)
    assert size is None and np.array_equal(back, ev)
    plain = np.stack([ev["t"], ev["x"], ev["y"], ev["p"]], axis=1)
    np.save(tmp_path / "plain.npy", plain)
    assert np.array_equal(read_events(tmp_path / "plain.npy")[0], ev)
    np.savez(tmp_path / "z.npz", events=ev)
    assert np.array_equal(read_events(tmp_path / "z.npz")[0], ev)


def test_npy_refuses_pickles_and_bad_shapes(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="obj.npy"):
        read_events(tmp_path / "obj.npy")
    np.save(tmp_path / "three.npy", np.zeros((5, 3), dtype=np.int64))
    with pytest.raises(FileFormatError, match=r"\(N, 4\)"):
        read_events(tmp_path / "three.npy")
    np.save(tmp_path / "pol.npy", np.array([[0, 1, 1, 3]]))
    with pytest.raises(FileFormatError, match="polarity"):
        read_events(tmp_path / "pol.npy")


def test_unknown_extension(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hello")
    with pytest.raises(FileFormatError, match="unknown event file type"):
        read_events(f)
