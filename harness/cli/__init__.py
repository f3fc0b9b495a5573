"""The `tunegate` command: registry, history, reports, review, export and serving (`commands`), and
the data commands (`data`)."""
from harness.cli.commands import main

__all__ = ["main"]
