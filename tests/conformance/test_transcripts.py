"""Our own conformance transcripts, replayed.

Each transcript in ``transcripts/`` was recorded from our server through
``openrealtime record`` (see :mod:`tests.conformance.scenarios`). Replaying
it against a fresh server, and against an in-process ``Session``, must give
back exactly the recorded server events (after normalization): a change in
behaviour shows up here as a path-level diff.
"""

from __future__ import annotations

import pytest

from openrealtime.server import Settings
from openrealtime.tools.replay import (
    format_report,
    load_transcript,
    replay,
    replay_session,
)
from tests.conformance.scenarios import SCENARIOS, Scenario
from tests.server.conftest import running_server


def test_every_transcript_has_a_scenario() -> None:
    recorded = {p.stem for p in SCENARIOS[0].path.parent.glob("*.jsonl")}
    assert recorded == {s.name for s in SCENARIOS}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_replay_against_a_fresh_server(scenario: Scenario) -> None:
    transcript = load_transcript(scenario.path)
    with running_server(Settings(responder=scenario.responder, pace=0)) as live:
        report = await replay(transcript, live.ws_url())
    assert report.ok, format_report(report)
    assert report.server_events == sum(e.dir == "server" for e in transcript.entries)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_replay_against_a_session(scenario: Scenario) -> None:
    transcript = load_transcript(scenario.path)
    report = await replay_session(transcript, responder=scenario.responder())
    assert report.ok, format_report(report)
