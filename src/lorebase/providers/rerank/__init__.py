"""Rerankers: models that score (query, passage) pairs."""
