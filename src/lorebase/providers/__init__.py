"""LLM and embedding providers behind one registry (after simonw/llm's plugin model)."""
