"""`echo`: the deterministic, LLM-free adapter of spec/runtime.md §11 (tests and demos)."""

from .adapter import EchoAdapter as Adapter
from .executor import EchoExecutor

__all__ = ["Adapter", "EchoExecutor"]
