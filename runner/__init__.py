"""runner: a declarative YAML campaign runner for the Blooio messaging API."""

__version__ = "0.1.0"
