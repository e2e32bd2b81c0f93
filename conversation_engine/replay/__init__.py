"""Record a run's model calls once, replay them offline against a changed engine.

* `format`: the recording files (JSON Lines, versioned, JSON Schema `recording.schema.json`);
* `recorder`: `RecordingTransport`, writing each conversation's calls as they complete;
* `replayer`: `ReplayTransport`, the recording as the model endpoint, strict or lenient;
* `normalise`: what may differ between runs, and the first field that does;
* `report`: per conversation reproduced / diverged at call k / ran dry, with totals;
* `rescore`: the evaluator run again over a stored batch's transcripts.

Both transports plug into an endpoint as its wire layer:
`OpenAIWrapper.from_settings(wire_layer=RecordingTransport("recording/"))`.
"""

from conversation_engine.replay.format import ConversationKey, Recording, read_recording
from conversation_engine.replay.recorder import RecordingTransport
from conversation_engine.replay.replayer import ReplayMode, ReplayTransport
from conversation_engine.replay.report import ReplayOutcome, ReplayReport, replay_report

__all__ = [
    "ConversationKey",
    "Recording",
    "RecordingTransport",
    "ReplayMode",
    "ReplayOutcome",
    "ReplayReport",
    "ReplayTransport",
    "read_recording",
    "replay_report",
]
