"""The emulator: a Numba event-queue engine, the dense NumPy reference, input encoders, results.

``emulator.run(net, inputs, steps, labels=..., record=...)`` → :class:`Result`.
"""

from .result import Result
from .run import run

try:
    from .event_input import EventBatch
except ImportError:  # pragma: no cover - the event input module is optional
    pass

__all__ = ["run", "Result", "EventBatch"]
