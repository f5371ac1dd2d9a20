"""One loader for every lensbox package: its modules, found on disk, imported on first access.

``lensbox.engine.smoother`` then works after a bare ``import lensbox`` without ``import lensbox``
importing JAX, scikit-learn or the data sets, and no package keeps a hand-typed list of its modules
(a hand-typed list once missed four of them).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterable, Mapping


def public_modules(path: Iterable[str]) -> tuple[str, ...]:
    """The modules and sub-packages in ``path`` whose names do not start with an underscore."""
    return tuple(
        sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))
    )


def attach(
    package: str, path: Iterable[str], exports: Mapping[str, str] | None = None
) -> tuple[Callable[[str], object], Callable[[], list[str]], tuple[str, ...]]:
    """``(__getattr__, __dir__, SUBMODULES)`` for ``package`` (PEP 562).

    Args:
        package: the package's ``__name__``.
        path: the package's ``__path__``.
        exports: public name -> the module (relative to ``package``) that defines it; each is
            imported when the name is first asked for.
    """
    submodules = public_modules(path)
    exports = dict(exports or {})

    def __getattr__(name: str):
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in exports:
            module = importlib.import_module(f"{package}.{exports[name]}")
            value = getattr(module, name)
            setattr(
                sys.modules[package], name, value
            )  # later look-ups skip this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *submodules, *exports})

    return __getattr__, __dir__, submodules
