"""``openrealtime serve``: flags, environment, and a real start-up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import openrealtime
from openrealtime.cli import (
    build_parser,
    build_settings,
    check_port,
    main,
    settings_env,
    startup_lines,
)
from openrealtime.responders.echo import EchoResponder
from openrealtime.server.settings import (
    REALTIME_MODELS,
    ConfigurationError,
    Settings,
)
from tests.served import wait_up


def parse(*argv: str) -> Settings:
    return build_settings(build_parser().parse_args(["serve", *argv]), environ={})


def test_serve_defaults() -> None:
    """No flags: loopback, port 8000, auth off, the spec's models, echo."""
    settings = parse()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.api_keys == ()
    assert not settings.auth_enabled
    assert settings.allowed_models == REALTIME_MODELS
    assert settings.ping_interval == 20.0
    assert settings.max_frame_bytes == 16 * 1024 * 1024
    # The voice pipeline defaults to the best engines installed (auto).
    assert settings.pipeline is not None
    assert (settings.pipeline.vad, settings.pipeline.speech) == ("auto", "auto")
    assert settings.pipeline.responder == "echo"
    responder = settings.responder()
    inner = getattr(responder, "inner", responder)  # wrapped when speech is on
    assert isinstance(inner, EchoResponder)
    assert settings.debug is False


def test_serve_flags(tmp_path: Path) -> None:
    """Every flag lands in Settings."""
    defaults = tmp_path / "defaults.json"
    defaults.write_text(json.dumps({"instructions": "Be brief."}))
    settings = parse(
        "--host", "0.0.0.0", "--port", "9000",
        "--api-key", "k1", "--api-key", "k2",
        "--allowed-model", "local-model",
        "--defaults", str(defaults),
        "--responder", "echo",
        "--max-frame-bytes", "2048",
        "--ping-interval", "0",
        "--log-level", "debug", "--debug", "--workers", "3",
    )  # fmt: skip
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.api_keys == ("k1", "k2")
    assert settings.model_allowed("local-model")
    assert settings.model_allowed("gpt-realtime")
    assert not settings.model_allowed("gpt-nope")
    assert settings.defaults.realtime is not None
    assert settings.defaults.realtime.instructions == "Be brief."
    assert settings.max_frame_bytes == 2048
    assert settings.ping_interval is None
    assert settings.log_level == "debug"
    assert settings.debug is True
    assert settings.workers == 3


def test_flags_override_environment() -> None:
    """OPENREALTIME_* is read, and a flag wins over it."""
    env = {
        "OPENREALTIME_HOST": "10.0.0.1",
        "OPENREALTIME_PORT": "7000",
        "OPENREALTIME_API_KEYS": "a, b",
        "OPENREALTIME_ALLOWED_MODELS": "*",
        "OPENREALTIME_DEBUG": "true",
        "OPENREALTIME_MAX_FRAME_BYTES": "4096",
    }
    args = build_parser().parse_args(["serve", "--port", "7001"])
    settings = build_settings(args, environ=env)
    assert settings.host == "10.0.0.1"
    assert settings.port == 7001
    assert settings.api_keys == ("a", "b")
    assert settings.model_allowed("anything")
    assert settings.debug is True
    assert settings.max_frame_bytes == 4096


def test_settings_env_carries_flags_to_workers(tmp_path: Path) -> None:
    """With --workers the flags travel as OPENREALTIME_* to the factory."""
    defaults = tmp_path / "d.json"
    defaults.write_text("{}")
    args = build_parser().parse_args(
        ["serve", "--api-key", "k1", "--api-key", "k2", "--defaults", str(defaults),
         "--debug", "--allowed-model", "m"]
    )  # fmt: skip
    env = settings_env(args)
    assert env["OPENREALTIME_API_KEYS"] == "k1,k2"
    assert env["OPENREALTIME_DEFAULTS"] == str(defaults)
    rebuilt = Settings.from_env(env)
    assert rebuilt.api_keys == ("k1", "k2")
    assert rebuilt.debug is True
    assert rebuilt.model_allowed("m")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"voice": "alloy"}',
            "(at session.voice): Unknown parameter: 'session.voice'.",
        ),
        ("{nope", "Invalid event: failed to parse JSON value."),
        (
            '{"output_modalities": ["audio", "text"]}',
            "(at session.output_modalities): Invalid modalities",
        ),
    ],
)
def test_bad_defaults_fail_at_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    """A bad defaults file stops start-up with the hosted message."""
    path = tmp_path / "defaults.json"
    path.write_text(content)
    assert main(["serve", "--defaults", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"openrealtime: error: invalid defaults file {path}")
    assert message in err


def test_bad_environment_value() -> None:
    """A bad variable names itself."""
    with pytest.raises(ConfigurationError, match="OPENREALTIME_PORT must be an"):
        Settings.from_env({"OPENREALTIME_PORT": "eighty"})


def test_unknown_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse refuses unknown subcommands with exit status 2."""
    with pytest.raises(SystemExit) as exited:
        main(["fly"])
    assert exited.value.code == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_python_m_openrealtime_serve(tmp_path: Path) -> None:
    """``python -m openrealtime serve --port P`` starts and answers /healthz."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "openrealtime", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            wait_up(process, port, log=log)
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/healthz", timeout=5
            ) as response:
                body = json.loads(response.read())
        finally:
            process.terminate()
            process.wait(timeout=30)
    output = log.read_text()
    assert body == {"status": "ok"}, output
    # One clear warning that authentication is off, and only one.
    assert output.count("Authentication is off") == 1
    # The URL a client needs, and the inspector's when it is on.
    assert f"Realtime API: ws://127.0.0.1:{port}/v1/realtime" in output
    assert "Inspector:" not in output


@pytest.mark.parametrize("driver", ["picows", "asgi"])
def test_serve_negotiates_no_compression(driver: str, tmp_path: Path) -> None:
    """A client that offers permessage-deflate (websockets' default, so
    openai-python's; browsers too) gets plain frames from either driver of
    ``openrealtime serve``: the same wire on both, and no zlib state per
    session (uvicorn alone would negotiate it on the ASGI driver)."""
    from websockets.sync.client import connect

    port = _free_port()
    argv = [sys.executable, "-m", "openrealtime", "serve", "--port", str(port)]
    argv += ["--driver", driver, "--transcription", "none", "--vad", "energy"]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_up(process, port, log=log)
            url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
            with connect(url, compression="deflate") as ws:
                assert (
                    "permessage-deflate"
                    in ws.request.headers["Sec-WebSocket-Extensions"]
                )
                assert "Sec-WebSocket-Extensions" not in ws.response.headers
                assert json.loads(ws.recv())["type"] == "session.created"
                ws.send(
                    json.dumps(
                        {"type": "session.update", "session": {"type": "realtime"}}
                    )
                )
                assert json.loads(ws.recv())["type"] == "session.updated"
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """``openrealtime`` alone prints its help (commands and --version), exit 0."""
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: openrealtime")
    for command in ("serve", "validate", "record", "replay", "--version"):
        assert command in out


def test_python_m_openrealtime_alone_prints_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openrealtime"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: openrealtime")
    assert result.stderr == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"openrealtime {openrealtime.__version__}\n"


def test_startup_lines() -> None:
    settings = Settings(host="0.0.0.0", port=8123, inspector=True)
    assert startup_lines(settings) == [
        "Realtime API: ws://0.0.0.0:8123/v1/realtime",
        "Inspector: http://0.0.0.0:8123/inspector",
    ]
    assert startup_lines(Settings(host="::1", port=9)) == [
        "Realtime API: ws://[::1]:9/v1/realtime"
    ]


@pytest.mark.parametrize("driver", ["picows", "asgi"])
def test_port_in_use_is_reported_first(driver: str) -> None:
    """A port in use: one clear line and exit 2, before the app starts."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "openrealtime",
                "serve",
                "--port",
                str(port),
                "--driver",
                driver,
                "--inspector",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr == (
        f"openrealtime: error: port {port} on 127.0.0.1 is already in use (is "
        "another server running there?); stop it or choose another port with "
        "--port\n"
    )
    assert "startup complete" not in result.stdout + result.stderr


def test_unusable_host_is_one_line() -> None:
    with pytest.raises(ConfigurationError, match="cannot listen on 192.0.2.1:"):
        check_port("192.0.2.1", 0)  # TEST-NET-1: not an address of this machine


def test_bad_scheduling_variable_fails_at_start_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """OPENREALTIME_SCHEDULING names one of the policies, or start-up stops."""
    monkeypatch.setenv("OPENREALTIME_SCHEDULING", "fifo")
    assert main(["serve", "--port", "0"]) == 2
    assert capsys.readouterr().err == (
        "openrealtime: error: OPENREALTIME_SCHEDULING must be one of batch, "
        "normal, not 'fifo'\n"
    )


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="Linux only")
def test_apply_scheduling_sets_every_thread_and_what_they_start() -> None:
    """``batch`` is Linux's SCHED_BATCH on every thread of the process (one
    already running too) and on threads started after; ``normal`` puts
    SCHED_OTHER back."""
    import threading

    from openrealtime.cli import apply_scheduling

    seen: list[int] = []
    started, release = threading.Event(), threading.Event()

    def running() -> None:
        started.set()
        release.wait(10)
        seen.append(os.sched_getscheduler(0))

    def new_thread() -> None:
        seen.append(os.sched_getscheduler(0))

    before = threading.Thread(target=running)
    before.start()
    started.wait(10)
    try:
        assert apply_scheduling("batch")
        assert os.sched_getscheduler(0) == os.SCHED_BATCH
        release.set()
        before.join()
        after = threading.Thread(target=new_thread)
        after.start()
        after.join()
        assert seen == [os.SCHED_BATCH, os.SCHED_BATCH]
    finally:
        release.set()
        assert apply_scheduling("normal")
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert {os.sched_getscheduler(int(t)) for t in os.listdir("/proc/self/task")} == {
        os.SCHED_OTHER
    }


@pytest.mark.parametrize(
    ("cpus", "servers", "each"),
    [(16, 16, 1), (16, 4, 4), (16, 3, 6), (2, 6, 1), (1, 1, 1), (8, 1, 8)],
)
def test_voice_workers_are_divided_among_server_workers(
    cpus: int, servers: int, each: int
) -> None:
    """``serve --workers W`` on C CPUs: each server's voice pool gets C / W
    workers per group (rounded up, at least one), not C each."""
    from openrealtime.cli import voice_workers_per_server

    assert voice_workers_per_server(cpus, servers) == each
