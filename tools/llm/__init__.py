"""Calls to OpenAI-compatible providers."""
