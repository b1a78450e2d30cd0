"""The version of drsim (one place; :mod:`drsim` and result metadata read it). Imports nothing."""

__version__ = "0.2.0"
