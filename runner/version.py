"""The runner's version: one place, read by the package metadata (pyproject) and the User-Agent."""

__version__ = "0.1.0"
