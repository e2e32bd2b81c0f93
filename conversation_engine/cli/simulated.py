"""`conversation-engine simulated-llm serve`: the simulated LLM over HTTP.

Serves the offline simulated LLM (a deterministic test double, not a language model) as an
OpenAI-compatible API at `http://<host>:<port>/v1` until Ctrl-C, for tools outside this
process (another engine, curl). It accepts any API key, so keep it on loopback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from conversation_engine.cli._apps import simulated_app
from conversation_engine.cli._terminal import _t, err_console


@simulated_app.command("serve")
def simulated_serve(
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    latency_ms: Annotated[float, typer.Option(help="Added latency per request.")] = 0.0,
) -> None:
    """Serve the simulated LLM's OpenAI-compatible API over HTTP (test double, not a model)."""
    from conversation_engine.testing.simulated_llm import SimulationConfig, serve

    err_console.print(
        f"[yellow]Simulated LLM (a deterministic test double, not a language model) on "
        f"http://{_t(host)}:{port}/v1[/]"
    )
    serve(host=host, port=port, config=SimulationConfig(latency_ms=latency_ms))
