"""The exceptions of fixar-hw that the golden model raises (NumPy-free).

Every error the project defines derives from :class:`FixarError`, so ``except FixarError``
catches them all; each also derives from the built-in exception it refines, so code that
catches ``ValueError`` keeps working. :mod:`fixar_hw.errors` adds the hardware side's errors
(tools, builds, the core) to the same hierarchy.
"""

from __future__ import annotations

__all__ = ["ConfigError", "FixarError", "ImageError"]


class FixarError(Exception):
    """Base class of every exception fixar-hw defines."""


class ConfigError(FixarError, ValueError):
    """A configuration text (JSON) cannot be read back into its configuration class."""


class ImageError(FixarError, ValueError):
    """A byte string or file is not a valid weight image (or not the expected one)."""
