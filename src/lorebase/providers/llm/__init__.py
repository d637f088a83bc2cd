"""providers/llm domain."""
