"""The errors lensbox raises, so a reader can catch one kind of mistake and read what went wrong.

Every message names the argument, what was expected and what arrived. Each error is also the
built-in exception a Python reader would expect (a shape error is a ``ValueError``), so code written
against the built-in types keeps working.
"""

from __future__ import annotations


class LensboxError(Exception):
    """Base class of every error lensbox raises on purpose."""


class ShapeError(LensboxError, ValueError):
    """An array (or pytree of arrays) has the wrong number of dimensions, rows, features or outputs."""


class NonFiniteError(LensboxError, ValueError):
    """An input that must be finite holds NaN or infinite entries (data, targets, initial parameters)."""


class ArgumentError(LensboxError, ValueError):
    """An argument has a value outside what the function accepts (a non-integer step count, an
    unknown option, an empty training set)."""


class ArgumentTypeError(LensboxError, TypeError):
    """An argument has the wrong type (an optimiser given as a string, a width given as an int)."""


class DataFileError(LensboxError, ValueError):
    """A data file is not what its format says: truncated, corrupt, or not the official file.
    The message names the file and what is wrong with it."""


class DivergenceError(LensboxError, RuntimeError):
    """Training diverged from finite initial parameters. ``step`` is the first bad step; ``partial``
    the result up to the last completed chunk before it, so nothing already computed is lost."""

    def __init__(self, message: str, step: int, partial):
        super().__init__(message)
        self.step = step
        self.partial = partial
