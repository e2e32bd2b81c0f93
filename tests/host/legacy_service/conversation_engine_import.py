from conversation_engine import AutogenConversationEngine as ConversationEngine  # noqa: F401
