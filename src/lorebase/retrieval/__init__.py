"""retrieval domain."""
