"""The public API: every exported name resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import conversation_engine


def test_every_exported_name_resolves() -> None:
    assert sorted(conversation_engine.__all__) == sorted(conversation_engine._EXPORTS)
    for name in conversation_engine.__all__:
        assert getattr(conversation_engine, name) is not None, name


def test_the_names_the_issues_promise_are_exported() -> None:
    promised = {
        "AutogenConversationEngine",
        "AutogenMASFactory",
        "ConversationAdapter",
        "LegacyConversationEngine",
        "BatchProcessor",
        "ConversationEvaluator",
        "OpenAIWrapper",
        "AutogenToolFactory",
        "EmulatedShop",
        "HttpToolBackend",
        "ConversationResult",
        "HistoryEntry",
        "ToolCall",
        "load_prompt_spec",
    }
    assert promised <= set(conversation_engine.__all__)


def test_unknown_names_raise_attribute_error() -> None:
    try:
        conversation_engine.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_importing_the_package_does_not_import_autogen_or_openai() -> None:
    code = (
        "import sys, conversation_engine; "
        "print(sorted(m for m in ('autogen_agentchat', 'openai', 'autogen_ext') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_observability_api_is_exported() -> None:
    from conversation_engine.observability import budget, events, tracing

    assert conversation_engine.observing is events.observing
    assert conversation_engine.traced is tracing.traced
    assert conversation_engine.Budget is budget.Budget
    assert issubclass(conversation_engine.ModelCallEnded, conversation_engine.Event)
