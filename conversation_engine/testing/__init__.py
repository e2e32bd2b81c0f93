"""Offline stand-ins: the simulated LLM, served in process as an httpx transport or over HTTP."""
