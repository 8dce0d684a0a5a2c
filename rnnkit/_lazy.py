"""Lazy package attributes (PEP 562): a name is imported from its module on first use.

``import rnnkit`` then costs only what a program touches: ``rnnkit.Recurrent`` loads
the layers, ``rnnkit.CharLanguageModel`` the language-model task, and nothing loads
the tasks, the diagnostics or the data readers that are not used. A package's
``__init__`` declares where each public name lives::

    __getattr__, __dir__, __all__ = attach(__name__, submodules=["init"],
                                           attributes={"layers": ["Recurrent", "Linear"]})

``dir(package)``, ``from package import *`` and tab completion see every name;
a name resolved once is stored in the package, so later look-ups are plain
attribute reads.
"""

from __future__ import annotations

import importlib
import sys


def attach(package: str, submodules=(), attributes: dict | None = None):
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    ``submodules``: names of the package's submodules exported as attributes
    (``rnnkit.optim``); ``attributes``: {submodule: [names it defines]}, exported
    as the package's own (``rnnkit.Recurrent`` from ``rnnkit.layers``).
    """
    where: dict[str, tuple[str, str | None]] = {name: (f"{package}.{name}", None) for name in submodules}
    for module, names in (attributes or {}).items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported twice")
            where[name] = (f"{package}.{module}", name)

    def __getattr__(name: str):
        try:
            module, attr = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = importlib.import_module(module)
        if attr is not None:
            value = getattr(value, attr)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, list(where)
