"""Command-line interface: a thin click layer over the library.

``main`` is a lazy click group (see ``runner.cli._base.COMMANDS``): each command lives in its
own module, imported only when that command runs.
"""

from runner.cli._base import main

__all__ = ["main"]
