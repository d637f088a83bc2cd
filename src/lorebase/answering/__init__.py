"""answering domain."""
