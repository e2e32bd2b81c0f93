"""The reference legacy engine: the A/B baseline on the plain `openai` SDK."""

from conversation_engine.legacy.engine import LegacyConversationEngine

__all__ = ["LegacyConversationEngine"]
