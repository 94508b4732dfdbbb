"""An aiortc client for the WebRTC tests: a microphone that plays PCM at real
time, the ``oai-events`` channel, and the reply track recorded."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import Callable
from typing import Any

import av
import httpx
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from openrealtime import audio


RATE = 48000
FRAME = 960  # 20 ms at 48 kHz


class Microphone(MediaStreamTrack):
    """Plays queued 24 kHz PCM16 at real time on an Opus track (silence
    between clips), as a browser's microphone would."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue = bytearray()
        self._start: float | None = None
        self._pts = 0

    def say(self, pcm24: bytes) -> float:
        """Queue speech; return its duration in seconds."""
        self._queue += audio.resample(pcm24, 24000, RATE)
        return len(pcm24) / 48000

    @property
    def idle(self) -> bool:
        return not self._queue

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        wait = self._start + self._pts / RATE - now
        if wait > 0:
            await asyncio.sleep(wait)
        data = bytes(self._queue[: FRAME * 2])
        del self._queue[: FRAME * 2]
        data += bytes(FRAME * 2 - len(data))
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(data)
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME
        return frame


class Client:
    """One WebRTC call from aiortc, as the hosted API's docs make one."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = Microphone()
        self.pc.addTrack(self.mic)
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: list[dict[str, Any]] = []
        self.heard: list[tuple[float, float]] = []  # (time, rms) of 20 ms frames
        self.call_id: str | None = None
        self._waiters: list[
            tuple[Callable[[dict[str, Any]], bool], asyncio.Future[dict[str, Any]]]
        ] = []
        self._opened = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

        @self.channel.on("open")
        def on_open() -> None:
            self._opened.set()

        @self.channel.on("message")
        def on_message(message: str) -> None:
            event = json.loads(message)
            self.events.append(event)
            for waiter in list(self._waiters):
                match, future = waiter
                if not future.done() and match(event):
                    future.set_result(event)
                    self._waiters.remove(waiter)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.ensure_future(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            samples = frame.to_ndarray().astype(np.float64) / 32768  # type: ignore[union-attr]
            self.heard.append((time.monotonic(), float(np.sqrt(np.mean(samples**2)))))

    async def connect(
        self,
        base: str,
        key: str | None = None,
        *,
        session: dict[str, Any] | None = None,
        query: str = "",
    ) -> httpx.Response:
        """Offer, post it, apply the answer; wait for the data channel."""
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with httpx.AsyncClient() as http:
            if session is None:
                response = await http.post(
                    f"{base}/v1/realtime/calls{query}",
                    content=self.pc.localDescription.sdp,
                    headers={**headers, "Content-Type": "application/sdp"},
                )
            else:
                response = await http.post(
                    f"{base}/v1/realtime/calls{query}",
                    files={
                        "sdp": (None, self.pc.localDescription.sdp),
                        "session": (None, json.dumps(session)),
                    },
                    headers=headers,
                )
        if response.status_code != 201:
            return response
        self.call_id = response.headers["location"].rsplit("/", 1)[1]
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=response.text, type="answer")
        )
        await asyncio.wait_for(self._opened.wait(), 20)
        return response

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    async def wait_for(
        self, kind: str, timeout: float = 60, *, after: int = 0, **fields: Any
    ) -> dict[str, Any]:
        """The first event of type ``kind`` (from index ``after``) whose
        fields match."""

        def match(event: dict[str, Any]) -> bool:
            return event["type"] == kind and all(
                event.get(k) == v for k, v in fields.items()
            )

        for event in self.events[after:]:
            if match(event):
                return event
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append((match, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {kind} {fields} within {timeout} s; got "
                f"{[e['type'] for e in self.events]}"
            ) from None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def loudness(self, start: float, end: float) -> float:
        """The loudest 20 ms of reply audio heard between two times."""
        return max((r for t, r in self.heard if start <= t <= end), default=0.0)

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
