"""The model endpoint every engine, customer and evaluator talks through (`endpoint`), its
client-side rate limit, and the check every chat completion passes on the wire."""
