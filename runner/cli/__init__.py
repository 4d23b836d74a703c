"""Command-line interface: a thin click layer over the library.

``main`` is a lazy click group (see ``runner.cli._base.COMMANDS``): each command lives in its
own module, imported only when that command runs.
"""

import sys

# httpx's package imports its own command-line tool (httpx._main: rich, pygments, click's parts,
# ~60 ms) whenever those are installed, and rich is (the progress bar). The campaign command
# never uses httpx's CLI, and httpx falls back to a stub `main` when that import fails: blocked
# here, before any command imports httpx, so `send` reaches its first request sooner. A process
# that imported httpx already keeps it as it is.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]

from runner.cli._base import main  # noqa: E402  (after the block above)

__all__ = ["main"]
