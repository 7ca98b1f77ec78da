"""neuroemu: an event-driven neuromorphic hardware emulator for converted CNNs."""

__version__ = "0.1.0"
