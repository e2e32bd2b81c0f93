"""redaction: credentials in URLs stay out of logs, and known secrets out of stored text."""

from __future__ import annotations

import base64

from conversation_engine.core._redaction import (
    REDACTED,
    redact_secrets,
    redact_secrets_in,
    register_secret,
    register_url_credentials,
)


def test_a_registered_key_is_redacted_everywhere_in_json_like_data() -> None:
    key = "sk-test-redaction-0123456789abcdef"
    register_secret(key)
    data = {"error": f"Incorrect API key provided: Bearer {key}", "n": 1, "list": [key, None]}
    assert redact_secrets_in(data) == {
        "error": f"Incorrect API key provided: Bearer {REDACTED}",
        "n": 1,
        "list": [REDACTED, None],
    }


def test_url_credentials_are_registered_in_every_form_they_are_sent() -> None:
    register_url_credentials("https://tool-user:p%40ss-word-99@tools.test/api?x=1")
    register_url_credentials("https://crm.test/hook?token=hook-token-4242&mode=ab")
    basic = base64.b64encode(b"tool-user:p@ss-word-99").decode()
    text = f"Basic {basic}; password p@ss-word-99 (p%40ss-word-99); token hook-token-4242"
    redacted = redact_secrets(text)
    for secret in (basic, "p@ss-word-99", "p%40ss-word-99", "hook-token-4242"):
        assert secret not in redacted
    assert redact_secrets("mode ab") == "mode ab"  # too short to be a secret: left alone


def test_placeholders_and_short_values_are_not_secrets() -> None:
    register_secret("simulated")
    register_secret("not-needed")
    register_secret("abc")
    assert redact_secrets("The simulated model, not-needed, abc") == (
        "The simulated model, not-needed, abc"
    )
