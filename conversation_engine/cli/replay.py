"""The recording and replay options `run`, `batch` and `compare` share, and the report.

`--record DIR` puts a `RecordingTransport` in the endpoint's wire, `--replay DIR` makes the
recording the wire (`--replay-mode strict|lenient`); after the run, `print_replay_report`
shows what each conversation did and `--replay-report FILE` writes it as JSON. A replay in
which any conversation did not reproduce exits with `REPLAY_DIVERGED_EXIT_CODE`, so a CI job
that replays a committed recording fails when the engine changed what it asks the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conversation_engine.cli._terminal import _t, console, write_json

if TYPE_CHECKING:
    import httpx

    from conversation_engine.replay import ReplayReport, ReplayTransport

#: Exit code of a replay in which a conversation diverged, ran dry or was not replayed.
REPLAY_DIVERGED_EXIT_CODE = 4

RecordOption = Annotated[
    Path | None,
    typer.Option(
        "--record",
        metavar="DIR",
        help="Record every model call into DIR (one JSON Lines file per conversation).",
    ),
]
ReplayOption = Annotated[
    Path | None,
    typer.Option(
        "--replay",
        metavar="DIR",
        help="Answer every model call from the recording in DIR instead of the model.",
    ),
]
ReplayModeOption = Annotated[
    str,
    typer.Option(
        "--replay-mode",
        metavar="strict|lenient",
        help="strict: a request that differs from the recording fails its conversation "
        "(ReplayDivergence); lenient: answer in order anyway and only report it.",
    ),
]
ReplayReportOption = Annotated[
    Path | None,
    typer.Option("--replay-report", metavar="FILE", help="Write the replay report as JSON."),
]


@dataclass
class WireSetup:
    """What `--record`/`--replay` put into the endpoint's wire."""

    layer: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None
    replay: ReplayTransport | None = None


def wire_setup(record: Path | None, replay: Path | None, mode: str) -> WireSetup:
    """Check the options and load the recording; `UserInputError` for a mistake in them."""
    from conversation_engine.core.errors import UserInputError
    from conversation_engine.replay import RecordingTransport, ReplayMode, ReplayTransport

    if mode not in {m.value for m in ReplayMode}:
        raise UserInputError(f"--replay-mode must be 'strict' or 'lenient', not '{mode}'.")
    if record is not None and replay is not None:
        raise UserInputError("--record and --replay exclude each other: give one of them.")
    if replay is not None:
        transport = ReplayTransport(replay, mode)
        return WireSetup(layer=transport, replay=transport)
    if record is not None:
        try:
            return WireSetup(layer=RecordingTransport(record))
        except OSError as error:
            raise UserInputError(
                f"The recording directory '{record}' cannot be created: {error.strerror or error}."
            ) from None
    return WireSetup()


def finish_replay(
    setup: WireSetup,
    report_path: Path | None,
    *,
    show: bool = True,
    exit_on_divergence: bool = True,
) -> None:
    """Show the replay report, write it (`--replay-report`), and exit with
    `REPLAY_DIVERGED_EXIT_CODE` unless every conversation was reproduced (or
    `exit_on_divergence` is False)."""
    from conversation_engine.replay import replay_report

    if setup.replay is None:
        return
    report = replay_report(setup.replay)
    if show:
        print_replay_report(report)
    if report_path is not None:
        write_json(report_path, report.to_dict())
    if exit_on_divergence and not report.all_reproduced:
        raise typer.Exit(REPLAY_DIVERGED_EXIT_CODE)


def print_replay_report(report: ReplayReport) -> None:
    """A table of the conversations that did not reproduce, their diffs, and the totals."""
    from rich.table import Table

    from conversation_engine.replay import ReplayOutcome

    others = [c for c in report.conversations if c.outcome is not ReplayOutcome.REPRODUCED]
    if others:
        table = Table(
            "scenario", "trial", "side", "outcome", "call", "role", "field", title="Replay"
        )
        for row in others:
            field = row.field or ""
            if row.in_tool_result:
                field += " (a tool result)"
            table.add_row(
                _t(row.scenario),
                str(row.trial),
                _t(row.side or ""),
                row.outcome.value,
                "" if row.call is None else str(row.call),
                _t(row.role or ""),
                _t(field),
            )
        console.print(table)
        for row in others:
            if row.diff:
                console.print(
                    f"[bold]{_t(row.scenario)}[/] trial {row.trial}, call {row.call} "
                    f"({_t(row.role)}), {_t(row.field)}:",
                    soft_wrap=True,
                )
                console.print(_t(row.diff), soft_wrap=True, highlight=False)
    totals = report.totals
    summary = ", ".join(f"{count} {name}" for name, count in totals.items() if count)
    console.print(
        f"[bold]Replay ({report.mode.value}):[/] {len(report.conversations)} conversation(s): "
        f"{_t(summary or 'none')}",
        soft_wrap=True,
    )


def replay_report_data(setup: WireSetup) -> dict[str, Any] | None:
    """The replay report as JSON data, None without `--replay`."""
    from conversation_engine.replay import replay_report

    return None if setup.replay is None else replay_report(setup.replay).to_dict()


def rescore_batch(
    batch_id: str, out_dir: Path, *, spec: str | None, scenarios: Any, resume: str | None
) -> None:
    """`batch --rescore BATCH_ID`: the evaluator over a stored batch, on the configured model
    and `spec`'s evaluator prompt (default: the batch's spec)."""
    import asyncio

    from conversation_engine.batch.evaluator import ConversationEvaluator
    from conversation_engine.batch.storage import ResultStorage
    from conversation_engine.cli._terminal import announce_endpoint, make_wrapper
    from conversation_engine.core.errors import UserInputError
    from conversation_engine.replay.rescore import rescore_batch as rescore

    if scenarios is not None or resume:
        raise UserInputError(
            "--rescore scores the transcripts stored in its batch; drop the SCENARIOS argument "
            "and --resume."
        )
    storage = ResultStorage(out_dir)
    job = storage.load_job(batch_id)
    spec_name = spec or str(job.get("prompt_spec_name") or "multiagent_prompts")

    async def main() -> Any:
        wrapper = make_wrapper()
        try:
            evaluator = ConversationEvaluator(wrapper, spec_name)
            announce_endpoint(wrapper)
            return await rescore(
                batch_id, storage, evaluator, label={"spec": spec_name, "model": wrapper.model}
            )
        finally:
            await wrapper.aclose()

    summary = asyncio.run(main())

    def mean(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    console.print(
        f"[bold]Rescored {summary.rescored} conversation(s)[/] of batch {_t(batch_id)} with "
        f"spec {_t(spec_name)}: {summary.changed} score(s) changed, {summary.failed} "
        f"evaluation(s) failed; mean {mean(summary.old_mean)} → {mean(summary.new_mean)}. "
        f"Scores written to [cyan]{_t(summary.path)}[/]",
        soft_wrap=True,
    )
