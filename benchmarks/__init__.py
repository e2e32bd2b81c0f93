"""Runnable benchmarks, one module per question: `python -m benchmarks.<name> [--quick]`.

Every benchmark runs offline against the simulated LLM with the shipped scenarios and prompt
specs, measures the engines side by side (interleaved, in one run, so the noise of a shared
machine falls on all of them alike), prints a Markdown table and writes
`benchmarks/results/<name>.json` (`<name>.quick.json` in quick mode). See `benchmarks/README.md`.
"""
