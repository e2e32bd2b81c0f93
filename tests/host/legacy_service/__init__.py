"""A stand-in of the existing simulation service (`llm-simulation-service/src/`), for tests.

Written from the service's documented behaviour, not from this project's classes: the
modules mirror the service's `src/` modules (`config`, `logging_utils`, `openai_wrapper`,
`prompt_specification`, `evaluator`, `batch_processor`, `persistent_storage`,
`result_storage`) and import only the standard library, `openai` and `jinja2`. The one
exception is `conversation_engine_import`, which holds the service's drop-in import line.
"""
