"""TLS: ``--ssl-certfile``, ``--ssl-keyfile``, ``--ssl-keyfile-password``.

Both drivers serve ``wss://`` and ``https://`` on one port with a
certificate from a CA the test makes; a wrong key, password or path fails at
start-up with one line; the flags reach worker processes.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from openai import AsyncOpenAI

from openrealtime.cli import build_parser, build_settings, main, settings_env
from openrealtime.server import Settings
from openrealtime.server.settings import ConfigurationError
from tests.server.conftest import API_KEY, LiveServer, running_server
from tests.tls import Certificates, make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def trusting(certificates: Certificates) -> ssl.SSLContext:
    """A client context that trusts the test CA (and only it)."""
    return ssl.create_default_context(cafile=str(certificates.ca))


@pytest.fixture(scope="module", params=["asgi", "picows"])
def tls_server(
    request: pytest.FixtureRequest, certificates: Certificates
) -> Iterator[LiveServer]:
    """A server on each driver with an encrypted key and its password."""
    settings = Settings(
        api_keys=(API_KEY,),
        ssl_certfile=str(certificates.cert),
        ssl_keyfile=str(certificates.encrypted_key),
        ssl_keyfile_password=certificates.password,
    )
    with running_server(settings, request.param) as live:
        yield live


async def test_wss_and_https(tls_server: LiveServer, trusting: ssl.SSLContext) -> None:
    """The SDK opens a session over wss:// and makes an ek_ key over https://."""
    assert tls_server.ws_base.startswith("wss://")
    client = AsyncOpenAI(
        api_key=API_KEY,
        base_url=tls_server.http + "/v1",
        websocket_base_url=tls_server.ws_base,
        http_client=httpx.AsyncClient(verify=trusting),
    )
    async with client:
        async with client.realtime.connect(
            model="gpt-realtime", websocket_connection_options={"ssl": trusting}
        ) as conn:
            assert (await conn.recv()).type == "session.created"
            await conn.session.update(session={"type": "realtime", "instructions": "x"})
            assert (await conn.recv()).type == "session.updated"
        secret = await client.realtime.client_secrets.create(
            session={"type": "realtime", "model": "gpt-realtime"}
        )
    assert secret.value.startswith("ek_")


async def test_untrusted_certificate_is_refused(tls_server: LiveServer) -> None:
    """A client that does not trust the CA gets a certificate error, not a session."""
    with pytest.raises(ssl.SSLCertVerificationError):
        async with websockets.connect(
            tls_server.ws_url(model="gpt-realtime"),
            additional_headers={"Authorization": f"Bearer {API_KEY}"},
            ssl=ssl.create_default_context(),
        ):
            pass  # pragma: no cover - the handshake fails


async def test_plain_ws_gets_no_session(tls_server: LiveServer) -> None:
    """ws:// (no TLS) to a TLS port does not open a session."""
    url = tls_server.ws_url(model="gpt-realtime").replace("wss://", "ws://", 1)
    with pytest.raises((websockets.InvalidMessage, ConnectionError, OSError)):
        async with asyncio.timeout(10):
            async with websockets.connect(
                url, additional_headers={"Authorization": f"Bearer {API_KEY}"}
            ):
                pass  # pragma: no cover - the handshake fails


def test_flags_and_environment(certificates: Certificates) -> None:
    """The flags set the settings, override the variables and reach workers."""
    args = build_parser().parse_args(
        [
            "serve",
            "--ssl-certfile",
            str(certificates.cert),
            "--ssl-keyfile",
            str(certificates.encrypted_key),
            "--ssl-keyfile-password",
            certificates.password,
        ]
    )
    settings = build_settings(args, environ={"OPENREALTIME_SSL_CERTFILE": "/nope"})
    assert settings.tls
    assert settings.ssl_certfile == str(certificates.cert)
    assert settings.ssl_options() == {
        "ssl_certfile": str(certificates.cert),
        "ssl_keyfile": str(certificates.encrypted_key),
        "ssl_keyfile_password": certificates.password,
    }
    assert certificates.password not in repr(settings)
    env = settings_env(args)
    assert env["OPENREALTIME_SSL_CERTFILE"] == str(certificates.cert.resolve())
    assert env["OPENREALTIME_SSL_KEYFILE"] == str(certificates.encrypted_key.resolve())
    assert env["OPENREALTIME_SSL_KEYFILE_PASSWORD"] == certificates.password
    from_env = Settings.from_env(env)
    assert from_env.ssl_options() == settings.ssl_options()
    plain = build_settings(build_parser().parse_args(["serve"]), environ={})
    assert not plain.tls and plain.ssl_options() == {}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ssl_keyfile": "key.pem"}, "need --ssl-certfile"),
        ({"ssl_keyfile_password": "pw"}, "need --ssl-certfile"),
    ],
)
def test_key_without_certificate(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings(**changes)  # type: ignore[arg-type]


def test_bad_certificate_fails_at_start_up(
    certificates: Certificates,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A wrong password, a missing file or a key that is not the certificate's:
    one line on stderr and exit code 2, before anything listens."""
    other = make_certificates(tmp_path)
    cases = [
        [
            "--ssl-certfile",
            str(certificates.cert),
            "--ssl-keyfile",
            str(certificates.encrypted_key),
            "--ssl-keyfile-password",
            "wrong",
        ],
        ["--ssl-certfile", str(tmp_path / "missing.pem")],
        ["--ssl-certfile", str(certificates.cert), "--ssl-keyfile", str(other.key)],
    ]
    for flags in cases:
        assert main(["serve", "--port", "0", *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("openrealtime: error: cannot load the TLS certificate")
        assert len(err.strip().splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_command_over_https(certificates: Certificates) -> None:
    """``openrealtime serve --ssl-certfile ... --ssl-keyfile ...`` answers https://."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openrealtime",
            "serve",
            "--port",
            str(port),
            "--ssl-certfile",
            str(certificates.cert),
            "--ssl-keyfile",
            str(certificates.key),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    f"https://127.0.0.1:{port}/healthz",
                    verify=ssl.create_default_context(cafile=str(certificates.ca)),
                    timeout=5,
                )
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout and process.stdout.read()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert response.status_code == 200
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0].decode()
    assert f"https://127.0.0.1:{port}" in output
