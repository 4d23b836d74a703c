"""Command-line interface: a thin click layer over the library.

Each command lives in its own module and registers itself on ``main`` when imported.
"""

# Imported for their side effect of registering commands on ``main``.
from runner.cli import (  # noqa: F401
    emulator,
    init,
    optouts,
    plan,
    preview,
    reach,
    report,
    send,
    track,
    validate,
)
from runner.cli._base import main

__all__ = ["main"]
