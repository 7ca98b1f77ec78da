"""neuroemu: an event-driven neuromorphic hardware emulator for converted CNNs.

The names below are imported lazily (on first use), so ``import neuroemu`` stays cheap and does
not compile anything:

* ``load_model``, ``convert``, ``feasibility`` — from :mod:`converter`;
* ``run`` — from :mod:`emulator`;
* ``get_profile`` — from :mod:`hw_models.profiles`;
* ``load_data`` — :mod:`neuroemu.data`; ``convert_model``, ``fit``, ``evaluate``, ``sweep``,
  ``demo`` — :mod:`neuroemu.pipeline` (``demo`` from :mod:`neuroemu.run_demo`).
"""

__version__ = "0.1.0"

_LAZY = {
    "load_model": ("converter.load", "load_model"),
    "convert": ("converter.convert", "convert"),
    "feasibility": ("converter", "feasibility"),
    "run": ("emulator.run", "run"),
    "get_profile": ("hw_models.profiles", "get_profile"),
    "load_data": ("neuroemu.data", "load_data"),
    "convert_model": ("neuroemu.pipeline", "convert_model"),
    "fit": ("neuroemu.pipeline", "fit"),
    "evaluate": ("neuroemu.pipeline", "evaluate"),
    "sweep": ("neuroemu.pipeline", "sweep"),
    "demo": ("neuroemu.run_demo", "demo"),
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'neuroemu' has no attribute {name!r}")
    import importlib
    module, attr = _LAZY[name]
    obj = importlib.import_module(module)
    obj = getattr(obj, attr)
    if not callable(obj):  # a package attribute that is a submodule of the same name
        obj = getattr(obj, attr)
    globals()[name] = obj
    return obj
