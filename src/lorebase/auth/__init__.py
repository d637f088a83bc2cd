"""Passwords, tokens, API keys and permissions."""
