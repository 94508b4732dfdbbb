"""The ICE host addresses a call offers: ``webrtc_hosts`` (``--webrtc-host``,
``OPENREALTIME_WEBRTC_HOSTS``) and :func:`ice_host_addresses`."""

from __future__ import annotations

import asyncio

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from openrealtime.cli import build_parser, build_settings, settings_env
from openrealtime.server import Settings
from openrealtime.server.settings import ConfigurationError
from openrealtime.server.webrtc import ice_host_addresses
from tests.webrtc.helpers import candidate_addresses


def test_flag_environment_and_default() -> None:
    assert Settings().webrtc_hosts == ()
    args = build_parser().parse_args(
        ["serve", "--webrtc-host", "127.0.0.1", "--webrtc-host", "::1"]
    )
    assert build_settings(args, environ={}).webrtc_hosts == ("127.0.0.1", "::1")
    # Carried to worker processes, and read back from there.
    env = settings_env(args)
    assert env["OPENREALTIME_WEBRTC_HOSTS"] == "127.0.0.1,::1"
    assert Settings.from_env(env).webrtc_hosts == ("127.0.0.1", "::1")
    assert Settings.from_env(
        {"OPENREALTIME_WEBRTC_HOSTS": " 10.0.0.5 , 127.0.0.1"}
    ).webrtc_hosts == ("10.0.0.5", "127.0.0.1")


@pytest.mark.parametrize("bad", ["localhost", "127.0.0.1:9000", "", "0.0.0.256"])
def test_not_an_ip_address_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="WebRTC host must be an IP"):
        Settings(webrtc_hosts=(bad,))


def test_discovery_within_and_outside_the_block() -> None:
    machine = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)
    with ice_host_addresses(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(False, True) == ["::1"]
        with ice_host_addresses(()):  # nothing given: the setting above holds
            assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    # Outside, aioice's own answer (loopback left out), wrapped once only.
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == machine
    assert "127.0.0.1" not in machine
    wrapped = aioice.ice.get_host_addresses
    with ice_host_addresses(["127.0.0.1"]):
        assert aioice.ice.get_host_addresses is wrapped


async def test_gathering_follows_the_task() -> None:
    """Peer connections gathering at once in tasks with different addresses
    (as two servers, or a server and a test client, in one process): each
    gets its own. Nothing is sent (no peer)."""

    async def gather(hosts: tuple[str, ...]) -> list[str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            pc.createDataChannel("oai-events")
            with ice_host_addresses(hosts):
                await pc.setLocalDescription(await pc.createOffer())
            return candidate_addresses(pc.localDescription.sdp)
        finally:
            await pc.close()

    with ice_host_addresses(["127.0.0.3"]):
        first, second, outer = await asyncio.gather(
            gather(("127.0.0.1",)), gather(("127.0.0.2",)), gather(())
        )
    assert first == ["127.0.0.1"]
    assert second == ["127.0.0.2"]
    assert outer == ["127.0.0.3"]  # the enclosing block's, inherited
