"""Chip profiles, the integer core-network model, its validation, HDF5 files and the energy model.

This package is the bottom layer of neuroemu: it imports nothing from ``converter``,
``emulator`` or ``neuroemu``.
"""
