"""``openrealtime validate``, ``record`` and ``replay``: through ``main`` and as
processes (``python -m openrealtime ...``)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from openrealtime.cli import main
from openrealtime.server import Settings
from openrealtime.tools.commands import parse_listen
from openrealtime.tools.normalize import Normalizer
from openrealtime.tools.record import Recorder, upstream_url
from openrealtime.tools.replay import (
    IdAligner,
    format_report,
    load_transcript,
    replay,
    replay_session,
)
from openrealtime.tools.validate import read_events, read_frames, validate
from tests.conformance.scenarios import SCENARIOS
from tests.server.conftest import API_KEY, LiveServer, running_server


ROOT = Path(__file__).parents[2]
#: Bound on any wait for a child process, in seconds (never reached when it works).
PROCESS_WAIT = 60
MAX_EVENTS = 200

BAD_AND_GOOD = "\n".join(
    [
        '{"type":"session.update","session":{"type":"realtime","instructions":"Hi."}}',
        '{"type":"session.update","event_id":"e2","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"semantic_vad","threshold":0.5}}}}}',
        "",
        "{not json",
        '{"type":"response.create"}',
        '{"type":"input_audio_buffer.commit","extra":1}',
    ]
)
EXPECTED_PROBLEMS = [
    "line 2: unknown_parameter session.audio.input.turn_detection.threshold: "
    "Unknown parameter: 'session.audio.input.turn_detection.threshold'.",
    "line 4: invalid_json: Invalid event: failed to parse JSON value. Please check "
    "the JSON syntax of your event.",
    "line 6: unknown_parameter extra: Unknown parameter: 'extra'.",
]
#: What validate prints for BAD_AND_GOOD: the problems, then the summary.
EXPECTED_REPORT = [*EXPECTED_PROBLEMS, "5 events checked, 3 invalid"]


def python_m(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openrealtime", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PROCESS_WAIT,
        check=False,
    )


# --- validate ------------------------------------------------------------------------


def test_validate_reports_each_bad_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(BAD_AND_GOOD)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == EXPECTED_REPORT


def test_validate_clean_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"type":"session.update","session":{"type":"realtime"}}\n')
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == "1 event checked, 0 invalid\n"


def test_validate_without_session_carries_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each update is checked against a fresh session of its own type, so a
    # transcription update is fine, and nothing carries between them.
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"type":"session.update","session":{"type":"transcription"}}\n'
        '{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"semantic_vad"}}}}}\n'
        '{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":{"eagerness":"high"}}}}}\n'
    )
    assert main(["validate", str(path)]) == 1
    # Against a fresh session (server_vad), eagerness is unknown...
    assert capsys.readouterr().out.startswith(
        "line 3: unknown_parameter session.audio.input.turn_detection.eagerness:"
    )
    # ...but after the semantic_vad update of line 2, it is not.
    assert (
        validate(path.read_text(), session=True, kind="realtime").problems[0].line == 1
    )


def test_validate_session_prints_the_final_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(BAD_AND_GOOD)
    assert (
        main(["validate", "--session", "--model", "gpt-realtime-mini", str(path)]) == 1
    )
    captured = capsys.readouterr()
    assert captured.err.splitlines() == EXPECTED_REPORT
    config = json.loads(captured.out)
    assert config["instructions"] == "Hi."
    assert config["model"] == "gpt-realtime-mini"
    assert config["audio"]["input"]["turn_detection"]["type"] == "server_vad"


def test_validate_transcription_session_refuses_responses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.json"
    path.write_text(
        '[\n  {"type": "session.update", "session": {"type": "transcription",\n'
        '     "audio": {"input": {"transcription": {"model": "whisper-1"}}}}},\n'
        '  {"type": "response.create"}\n]\n'
    )
    assert main(["validate", "--session", "--kind", "transcription", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "element 2 (line 4): invalid_event type: The event 'response.create' is not "
        "supported in a transcription session.\n2 events checked, 1 invalid\n"
    )
    config = json.loads(captured.out)
    assert config["type"] == "transcription"
    assert config["audio"]["input"]["transcription"]["model"] == "whisper-1"


def test_validate_reads_stdin_and_arrays(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('[{"type": "session.close"}, 3]'))
    assert main(["validate", "-"]) == 1
    assert capsys.readouterr().out == (
        "element 2 (line 1): invalid_event: Invalid event: expected an object, but "
        "got an integer.\n2 events checked, 1 invalid\n"
    )


def test_read_frames_of_arrays() -> None:
    text = '[\n{"a": 1},\n\n {"b": [2]}\n]'
    assert list(read_frames(text)) == [(2, '{"a": 1}'), (4, '{"b": [2]}')]
    assert list(read_frames("[]")) == []
    assert list(read_frames('[{"a": 1} {"b": 2}]')) == [
        (1, '{"a": 1}'),
        (1, '{"b": 2}]'),
    ]
    assert list(read_frames('[{"a": 1},\n{"b": ')) == [(1, '{"a": 1}'), (2, '{"b": ')]
    assert list(read_frames('[{"a": 1},')) == [(1, '{"a": 1}'), (1, "[")]


def test_read_events_numbers_array_elements() -> None:
    text = '[\n{"a": 1},\n\n {"b": [2]}, 3\n]'
    assert [tuple(f) for f in read_events(text)] == [
        (2, '{"a": 1}', 1),
        (4, '{"b": [2]}', 2),
        (4, "3", 3),
    ]
    assert list(read_events('{"a": 1}\n')) == [(1, '{"a": 1}', None)]


def test_validate_checks_audio_as_the_server_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Base64 and whole samples, in appends and in created items."""
    good = base64.b64encode(bytes(4)).decode()
    odd = base64.b64encode(bytes(3)).decode()
    item = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "audio": "not base64!!"}],
    }
    events = [
        {"type": "input_audio_buffer.append", "audio": "not base64!!"},
        {"type": "input_audio_buffer.append", "audio": good},
        {"type": "input_audio_buffer.append", "audio": odd},
        {"type": "conversation.item.create", "item": item},
        {
            "type": "conversation.item.create",
            "previous_item_id": "item_elsewhere",  # not this check's business
            "item": {**item, "content": [{"type": "input_audio", "audio": good}]},
        },
    ]
    path = tmp_path / "audio.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events))
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "line 1: invalid_value audio: Invalid 'audio'. Expected base64-encoded "
        "audio bytes.",
        "line 3: invalid_value audio: Invalid 'audio'. Expected audio/pcm audio: a "
        "whole number of 2-byte samples, but got 3 bytes.",
        "line 4: invalid_value item.content[0].audio: Invalid "
        "'item.content[0].audio'. Expected base64-encoded audio.",
        "5 events checked, 3 invalid",
    ]
    # A session in G.711 takes one byte a sample: the odd append is fine there.
    pcmu = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {"input": {"format": {"type": "audio/pcmu"}}},
        },
    }
    text = json.dumps(pcmu) + "\n" + json.dumps(events[2])
    assert validate(text, session=True).ok


def test_validate_reads_record_transcripts() -> None:
    """A ``record`` transcript: its client events are checked, by file line."""
    lines = [
        {"meta": {"query": "model=gpt-realtime"}},
        {
            "dir": "server",
            "event": {"type": "session.created", "event_id": "<event_1>"},
        },
        {
            "dir": "client",
            "event": {
                "type": "session.update",
                "session": {"type": "realtime", "voice": "x"},
            },
        },
        {"dir": "server", "event": {"type": "error", "event_id": "<event_2>"}},
        {
            "dir": "client",
            "event": {"type": "response.create", "event_id": "<event_3>"},
        },
        {"dir": "client", "text": "{nope"},
        {"dir": "client", "close": {"code": 1000, "reason": ""}},
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    result = validate(text)
    assert [str(p) for p in result.problems] == [
        "line 3: unknown_parameter session.voice: Unknown parameter: 'session.voice'.",
        "line 6: invalid_json: Invalid event: failed to parse JSON value. Please "
        "check the JSON syntax of your event.",
    ]
    assert result.summary() == "3 events checked, 2 invalid"
    # On the recorded conformance transcripts, each problem validate finds is
    # a client event the recorded server answered with an error of that code.
    found = 0
    for path in sorted((ROOT / "tests/conformance/transcripts").glob("*.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for problem in validate(path.read_text()).problems:
            answer = records[problem.line]  # the line after it (lines count from 1)
            assert answer["dir"] == "server", (path.name, problem)
            assert answer["event"]["error"]["code"] == problem.error.code
            found += 1
    assert found == 6


def test_validate_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_validate_as_a_process() -> None:
    done = python_m("validate", "-", stdin=BAD_AND_GOOD)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == EXPECTED_REPORT
    ok = python_m("validate", "-", stdin='{"type":"input_audio_buffer.clear"}\n')
    assert (ok.returncode, ok.stdout) == (0, "1 event checked, 0 invalid\n")


# --- record --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[LiveServer]:
    """The server recorded from: authentication on."""
    with running_server(Settings(api_keys=(API_KEY,), pace=0)) as live:
        yield live


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def text_session(url: str, **kw: Any) -> str | None:
    """A short text session through ``url``; returns the negotiated subprotocol."""
    async with connect(url, proxy=None, **kw) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "session.created", first
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "output_modalities": ["text"]},
                }
            )
        )
        await ws.send(
            json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "Hi relay"}],
                    },
                }
            )
        )
        await ws.send(json.dumps({"type": "response.create"}))
        for _ in range(MAX_EVENTS):
            if json.loads(await ws.recv())["type"] == "response.done":
                break
        return ws.subprotocol


async def connect_when_listening(url: str, **kw: Any) -> str | None:
    for _ in range(500):  # the relay starts in another thread
        try:
            return await text_session(url, **kw)
        except OSError:
            await asyncio.sleep(0.02)
    raise AssertionError("the relay never listened")


def check_transcript(path: Path) -> None:
    text = path.read_text()
    assert API_KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {"meta": {"query": "model=gpt-realtime"}}
    assert lines[1]["dir"] == "server"
    assert lines[1]["event"]["type"] == "session.created"
    assert lines[1]["event"]["event_id"] == "<event_1>"
    assert lines[1]["event"]["session"]["id"] == "<session_1>"
    assert lines[1]["event"]["session"]["expires_at"] == "<timestamp>"
    dirs = [(line["dir"], line.get("event", {}).get("type")) for line in lines[1:]]
    # The client sent three events without waiting: the server's answers
    # interleave, so only each side's order is fixed.
    assert [t for d, t in dirs if d == "client"][:3] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    assert ("server", "session.updated") in dirs
    assert ("server", "response.done") in dirs
    assert lines[-1] == {"dir": "client", "close": {"code": 1000, "reason": ""}}


async def test_record_through_main(upstream: LiveServer, tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "t.jsonl"
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            main(
                [
                    "record",
                    upstream.ws_url(),
                    "-o",
                    str(out),
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--once",
                ]
            )
        )
    )
    thread.start()
    try:
        # The key travels as a subprotocol (as browsers send it) and comes back.
        subprotocol = await connect_when_listening(
            f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime",
            subprotocols=["realtime", f"openai-insecure-api-key.{API_KEY}"],
        )
    finally:
        await asyncio.to_thread(thread.join, PROCESS_WAIT)
    assert codes == [0]
    assert subprotocol == "realtime"
    check_transcript(out)


async def test_record_as_a_process(upstream: LiveServer, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openrealtime",
        "record",
        upstream.ws_url(),
        "-o",
        str(out),
        "--listen",
        "127.0.0.1:0",
        "--once",
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        line = (
            await asyncio.wait_for(process.stderr.readline(), PROCESS_WAIT)
        ).decode()
        assert line.startswith("listening on ws://127.0.0.1:"), line
        port = int(line.split(":")[2].split(",")[0])
        headers = {"Authorization": f"Bearer {API_KEY}"}
        await text_session(
            f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime",
            additional_headers=headers,
        )
        await asyncio.wait_for(process.wait(), PROCESS_WAIT)
        rest = (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:  # pragma: no cover - only on failure
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert f"recording session 1 to {out}" in rest
    check_transcript(out)


async def test_record_numbers_later_sessions_and_reports_a_dead_upstream(
    upstream: LiveServer, tmp_path: Path
) -> None:
    recorder = Recorder(upstream.ws_url(), tmp_path / "t.jsonl", log=lambda _: None)
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(recorder.run("127.0.0.1", 0, ready.set_result))
    port = await ready
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        for _ in range(2):
            await text_session(url, additional_headers=headers)
        # Without the key the upstream refuses as the hosted API does: an
        # error event, then a close the relay passes on.
        async with connect(url, proxy=None) as ws:
            refused = json.loads(await ws.recv())
            await ws.wait_closed()
        assert refused["type"] == "error"
        assert refused["error"]["type"] == "invalid_request_error"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (tmp_path / "t.2.jsonl").exists()
    third = (tmp_path / "t.3.jsonl").read_text().splitlines()
    last = json.loads(third[-1])
    assert last["dir"] == "server"
    assert last["close"]["code"] == ws.close_code

    dead = Recorder(f"ws://127.0.0.1:{free_port()}/v1/realtime", tmp_path / "d.jsonl")
    ready = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(dead.run("127.0.0.1", 0, ready.set_result))
    port = await ready
    try:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://127.0.0.1:{port}/", proxy=None):
                pass  # pragma: no cover
        assert info.value.response.status_code == 502
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_upstream_url_and_listen() -> None:
    assert (
        upstream_url("ws://h/v1/realtime?model=a&x=1", "/anything?model=b")
        == "ws://h/v1/realtime?model=b&x=1"
    )
    assert parse_listen("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_listen(":9000") == ("127.0.0.1", 9000)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("host", "h:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)


# --- replay --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_server() -> Iterator[LiveServer]:
    with running_server(Settings(pace=0)) as live:
        yield live


TRANSCRIPT = next(s for s in SCENARIOS if s.name == "text_turn_echo").path


def test_replay_through_main(
    echo_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(TRANSCRIPT), "--against", echo_server.ws_url()]) == 0
    out = capsys.readouterr().out
    assert "no differences" in out and "(5 client events, 17 server events)" in out


def changed_transcript(tmp_path: Path) -> Path:
    """The echo transcript, with a different recorded reply and one event fewer."""
    lines = TRANSCRIPT.read_text().splitlines()
    edited = []
    for line in lines:
        record = json.loads(line)
        event = record.get("event", {})
        if event.get("type") == "response.output_text.delta":
            event["delta"] = "Something else"
        if event.get("type") == "conversation.item.retrieved":
            continue  # the replay gets it anyway: extra
        edited.append(json.dumps(record))
    path = tmp_path / "changed.jsonl"
    path.write_text("\n".join(edited) + "\n")
    return path


def test_replay_reports_differences(
    echo_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = changed_transcript(tmp_path)
    assert main(["replay", str(path), "--against", echo_server.ws_url()]) == 1
    out = capsys.readouterr().out
    assert "2 difference(s)" in out
    assert "after client event response.create (line 8):" in out
    assert "  changed: response.output_text.delta" in out
    assert '    ~ delta: "Something else" -> "Hello there, echo!"' in out
    # Waits are by count, so an unexpected event is seen after the client
    # event that follows it.
    assert "after client event session.close (line 21):" in out
    assert "  extra:   conversation.item.retrieved" in out


async def test_replay_reports_missing_events(
    echo_server: LiveServer, tmp_path: Path
) -> None:
    lines = TRANSCRIPT.read_text().splitlines()
    # A recorded event the server does not send: expected, never received.
    lines.insert(
        -1, json.dumps({"dir": "server", "event": {"type": "response.imagined"}})
    )
    transcript = load_transcript("t", "\n".join(lines))
    report = await replay(transcript, echo_server.ws_url(), timeout=0.05)
    assert [(d.kind, d.type) for d in report.differences] == [
        ("missing", "response.imagined")
    ]


def test_replay_as_a_process(echo_server: LiveServer, tmp_path: Path) -> None:
    same = python_m("replay", str(TRANSCRIPT), "--against", echo_server.ws_url())
    assert same.returncode == 0, same.stdout + same.stderr
    changed = python_m(
        "replay", str(changed_transcript(tmp_path)), "--against", echo_server.ws_url()
    )
    assert changed.returncode == 1
    assert '~ delta: "Something else" -> "Hello there, echo!"' in changed.stdout


def test_replay_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dir": "sideways"}\n')
    assert main(["replay", str(bad), "--against", "ws://127.0.0.1:9/"]) == 2
    assert "not a transcript line" in capsys.readouterr().err
    url = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    assert main(["replay", str(TRANSCRIPT), "--against", url]) == 2
    assert "cannot connect" in capsys.readouterr().err


def renumbered_transcript(drop_line: int) -> str:
    """The echo transcript recorded from a server that did not send one event:
    that line is gone and later event ids are numbered one lower, as ``record``
    would have numbered them."""
    lines = TRANSCRIPT.read_text().splitlines()
    dropped = json.loads(lines[drop_line - 1])["event"]["event_id"]
    gone = int(dropped.strip("<>").split("_")[1])

    def shift(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"<event_{n - 1 if n > gone else n}>"

    kept = lines[: drop_line - 1] + lines[drop_line:]
    return "\n".join(re.sub(r"<event_(\d+)>", shift, line) for line in kept)


async def test_replay_aligns_renumbered_ids(echo_server: LiveServer) -> None:
    """One extra event renumbers every later id; only the extra one is reported."""
    transcript = load_transcript("t", renumbered_transcript(drop_line=7))
    for report in (
        await replay(transcript, echo_server.ws_url()),
        await replay_session(transcript),
    ):
        assert [(d.kind, d.type) for d in report.differences] == [
            ("extra", "conversation.item.done")
        ], format_report(report)


async def test_replay_still_reports_a_different_id(echo_server: LiveServer) -> None:
    """An id that points at another object than recorded is a difference."""
    text = renumbered_transcript(drop_line=7).replace(
        '"type": "conversation.item.retrieve", "item_id": "<item_2>"',
        '"type": "conversation.item.retrieve", "item_id": "<item_1>"',
    )
    assert '"item_id": "<item_1>"' in text
    report = await replay(load_transcript("t", text), echo_server.ws_url())
    retrieved = [
        d for d in report.differences if d.type == "conversation.item.retrieved"
    ]
    (difference,) = retrieved
    paths = {c.path: (c.old, c.new) for c in difference.changes}
    assert paths["item.id"] == ("<item_2>", "<item_1>")


def test_aligner_pairs_once_and_marks_collisions() -> None:
    aligner = IdAligner()
    aligner.learn(
        {"event_id": "<event_1>", "x": ["<item_2>"]},
        {"event_id": "<event_2>", "x": ["<item_1>"]},
    )
    # Already paired on either side: not paired again.
    aligner.learn({"event_id": "<event_1>"}, {"event_id": "<event_3>"})
    assert aligner.recorded_view({"a": "<event_2>", "b": "see <item_1>", "c": 3}) == {
        "a": "<event_1>",
        "b": "see <item_2>",
        "c": 3,
    }
    # <event_1> is live-unpaired but means another event in the recording.
    assert aligner.recorded_view(["<event_1>", "<event_9>"]) == [
        "<live event_1>",
        "<event_9>",
    ]
    normalizer = Normalizer()
    normalizer.id("event_live", "event")  # the live run has seen <event_1>
    assert aligner.live_view(
        {"e": "<event_1>", "f": "<event_7>", "n": 1}, normalizer
    ) == {
        "e": "<event_2>",
        "f": "<event_2>",  # fresh in the live numbering
        "n": 1,
    }
