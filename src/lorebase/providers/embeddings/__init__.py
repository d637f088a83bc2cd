"""Embedding vendors, one module each."""
