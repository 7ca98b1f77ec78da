"""``load_model``: one entry point that picks the right importer for a model file.

Dispatch is on content first (a zip is a Keras 3 ``.keras``; an HDF5 file with ``model_config``
or ``layer_names`` is Keras; an HDF5 file with ``nodes``/``edges`` is NIR) and on the extension
otherwise (``.onnx``; ``.npz`` is neuroemu's own format, :mod:`converter.npz_import`; ``.json``
means a Keras 1 architecture with its ``.h5`` beside it).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from hw_models.errors import FileFormatError
from .graph import Graph

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _hdf5_kind(path: Path) -> str | None:
    import h5py  # noqa: PLC0415  (h5py is a core dependency; imported here to keep startup light)
    try:
        with h5py.File(path, "r") as f:
            if "model_config" in f.attrs or "layer_names" in f.attrs or "model_weights" in f:
                return "keras"
            if "node" in f or ("nodes" in f and "edges" in f):
                return "nir"
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot open HDF5 file ({exc})") from exc
    return None


def load_model(path, input_scale: float | None = None) -> Graph:
    """Import a model file as a float :class:`Graph`.

    ``input_scale`` is the multiplier from raw integer data to the model's input units (e.g.
    ``1/255`` for a model trained on pixels in [0, 1], ``1.0`` for raw 0..255 input); it is stored
    on the graph as metadata (``graph.input_scale``) for the later pipeline steps.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(8)
    if suffix == ".npz":  # before the zip test: an .npz is a zip archive too
        from .npz_import import load_npz_model  # noqa: PLC0415
        return load_npz_model(path, input_scale)
    if suffix == ".onnx":
        from .onnx_import import load_onnx  # noqa: PLC0415
        return load_onnx(path, input_scale)
    if suffix in (".keras", ".json") or zipfile.is_zipfile(path):
        from .keras_import import load_keras  # noqa: PLC0415
        return load_keras(path, input_scale)
    if head == _HDF5_MAGIC:
        kind = _hdf5_kind(path)
        if kind == "nir" or (kind is None and suffix == ".nir"):
            from .nir_import import load_nir  # noqa: PLC0415
            return load_nir(path, input_scale)
        if kind == "keras" or suffix in (".h5", ".hdf5"):
            from .keras_import import load_keras  # noqa: PLC0415
            return load_keras(path, input_scale)
        raise FileFormatError(f"{path}: HDF5 file is neither a Keras model nor a NIR graph")
    if suffix in (".h5", ".hdf5", ".nir"):
        raise FileFormatError(f"{path}: not a valid HDF5 file (bad signature {head!r}; "
                              f"truncated or corrupt?)")
    raise FileFormatError(f"{path}: unknown model format {suffix!r} (supported: .h5/.hdf5 "
                          f"Keras, .json+.h5 Keras 1, .keras, .onnx, .nir, neuroemu .npz)")


__all__ = ["load_model"]
