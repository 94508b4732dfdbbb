"""The ICE host addresses a call offers: ``webrtc_hosts`` (``--webrtc-host``,
``OPENREALTIME_WEBRTC_HOSTS``) and :func:`ice_host_addresses`."""

from __future__ import annotations

import asyncio

import aioice.ice
import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from openrealtime.cli import build_parser, build_settings, settings_env
from openrealtime.server import Settings, webrtc
from openrealtime.server.settings import ConfigurationError
from openrealtime.server.webrtc import ice_host_addresses
from tests.server.conftest import API_KEY, running_server
from tests.webrtc.helpers import Client, candidate_addresses


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


def test_peer_networks_flag_environment_and_errors() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--webrtc-peer-network",
            "127.0.0.0/8",
            "--webrtc-peer-network",
            "::1",
        ]
    )
    settings = build_settings(args, environ={})
    assert settings.webrtc_peer_networks == ("127.0.0.0/8", "::1")
    assert [str(n) for n in settings.peer_networks] == ["127.0.0.0/8", "::1/128"]
    env = settings_env(args)
    assert env["OPENREALTIME_WEBRTC_PEER_NETWORKS"] == "127.0.0.0/8,::1"
    assert Settings.from_env(env).webrtc_peer_networks == ("127.0.0.0/8", "::1")
    assert Settings().peer_networks == ()
    with pytest.raises(ConfigurationError, match="peer network must be an IP"):
        Settings(webrtc_peer_networks=("loopback",))


OFFER = (
    "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
    "a=candidate:2 1 udp 2130706431 192.0.2.2 5001 typ host\r\n"
    "a=candidate:3 1 udp 2130706431 0b1e4c2a-1d1c.local 5002 typ host\r\n"
    "a=candidate:4 1 udp 2130706431 ::1 5003 typ host\r\n"
    "a=candidate:bad\r\n"
    "a=end-of-candidates\r\n"
)


def test_offer_candidates_outside_the_networks_are_dropped() -> None:
    networks = Settings(webrtc_peer_networks=("127.0.0.0/8", "::1")).peer_networks
    kept = webrtc._drop_candidates(OFFER, networks)
    # mDNS names are dropped too: their address is unknown.
    assert candidate_addresses(kept) == ["127.0.0.1", "::1"]
    assert "a=candidate:bad\r\n" in kept and kept.endswith("a=end-of-candidates\r\n")
    unix = OFFER.replace("\r\n", "\n")
    assert webrtc._drop_candidates(unix, networks) == kept.replace("\r\n", "\n")


def without_candidates(sdp: str) -> str:
    """An offer as Chromium's: no candidates, the peer's are learned from
    its checks (peer reflexive)."""
    return "".join(
        line
        for line in sdp.splitlines(keepends=True)
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )


async def test_checks_from_outside_the_networks_go_unanswered() -> None:
    """A client on 127.0.0.2 calls a server that answers 127.0.0.1 only,
    with an offer without candidates: its checks are not answered (no peer
    candidate is learned, nothing is sent to it) and the call does not
    connect; answering 127.0.0.0/8, the same call connects."""
    for networks, connects in ((("127.0.0.1/32",), False), (("127.0.0.0/8",), True)):
        settings = Settings(
            api_keys=(API_KEY,),
            webrtc_hosts=("127.0.0.1",),
            webrtc_peer_networks=networks,
        )
        with running_server(settings, "asgi") as live:
            client = Client(hosts=("127.0.0.2",))
            try:
                offer = without_candidates(await client.offer())
                async with httpx.AsyncClient() as http:
                    response = await http.post(
                        f"{live.http}/v1/realtime/calls",
                        content=offer,
                        headers={
                            "Authorization": f"Bearer {API_KEY}",
                            "Content-Type": "application/sdp",
                        },
                    )
                assert response.status_code == 201, response.text
                call_id = response.headers["location"].rsplit("/", 1)[1]
                call = live.app.state.realtime.calls.get(call_id)
                await client.answered(response.text)
                opened = asyncio.Event()
                client.channel.on("open", opened.set)
                if connects:
                    await asyncio.wait_for(opened.wait(), 20)
                    remote = [
                        c.ip
                        for t in call.pc.getTransceivers()
                        for c in t.receiver.transport.transport.getRemoteCandidates()
                    ]
                    assert remote and set(remote) == {"127.0.0.2"}
                    continue
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(opened.wait(), 4)
                assert call.pc.connectionState != "connected"
                for transceiver in call.pc.getTransceivers():
                    ice = transceiver.receiver.transport.transport
                    assert ice.getRemoteCandidates() == []
            finally:
                await client.close()
                async with httpx.AsyncClient() as http:
                    await http.post(
                        f"{live.http}/v1/realtime/calls/{call_id}/hangup",
                        headers={"Authorization": f"Bearer {API_KEY}"},
                    )
                for _ in range(100):
                    if not len(live.app.state.realtime.calls):
                        break
                    await asyncio.sleep(0.05)
