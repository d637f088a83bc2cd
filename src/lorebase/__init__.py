"""Lorebase: a self-hosted knowledge engine for AI agents."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lorebase")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
