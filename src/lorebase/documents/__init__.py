"""documents domain."""
