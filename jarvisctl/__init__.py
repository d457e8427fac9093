"""Operator tool for a local stack of A2A agents behind a LiteLLM gateway."""

__version__ = "0.1.0"
