"""Embedding spaces, the embedding cache and re-embedding: services over `providers.base`."""
