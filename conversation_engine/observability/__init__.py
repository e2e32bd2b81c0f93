"""Seeing inside a run: the event stream of the engines (`events`), OpenTelemetry traces
built from it (`tracing`, `exporters`), the live transcript (`follow`), the spending cap
(`budget`) and the price table (`prices`)."""
