"""One exception family for the whole project.

Every error inherits from :class:`NeuroemuError` *and* from the builtin exception whose meaning it
carries, so callers may catch either ``NeuroemuError`` or, say, ``ValueError``.  Messages name the
thing at fault (population, layer, file, limit), the value found and, where possible, what to do.
"""

from __future__ import annotations


class NeuroemuError(Exception):
    """Base class of every error raised on purpose by neuroemu."""


class NetworkError(NeuroemuError, ValueError):
    """A core network is structurally invalid (shapes, parameters, connectivity)."""


class ProfileError(NeuroemuError, ValueError):
    """A chip profile is unknown or internally inconsistent."""


class LimitError(NeuroemuError, ValueError):
    """A network does not fit the limits of a chip profile."""


class FileFormatError(NeuroemuError, ValueError):
    """A file is corrupt, truncated, of the wrong kind or of an unsupported version."""


class ConversionError(NeuroemuError, ValueError):
    """A model cannot be converted (bad weights, impossible options)."""


class UnsupportedLayerError(ConversionError):
    """A model contains a layer neuroemu does not support; the message names layer and type."""


class DataError(NeuroemuError, ValueError):
    """Input data has the wrong shape, type or range."""


class SimulationError(NeuroemuError, RuntimeError):
    """The emulator cannot run a network as asked."""


class StateOverflowError(SimulationError, OverflowError):
    """A neuron state left its range under the overflow policy ``raise``."""


class BudgetError(NeuroemuError, MemoryError):
    """An allocation a file or an option asks for exceeds the memory budget
    (:func:`hw_models.safeio.memory_budget`); the message says how much would be needed."""
