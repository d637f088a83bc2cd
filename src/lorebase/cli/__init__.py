"""The `lorebase` command: the app and shared helpers in `cli.base`; serving and operations in
`cli.ops`; queries, ingestion and the evaluation in `cli.data`."""

from lorebase.cli import data, ops  # their commands register on the app when imported
from lorebase.cli.base import app
from lorebase.cli.ops import main

__all__ = ["app", "data", "main", "ops"]
