"""WebRTC from headless Chromium: the stock ``@openai/agents-realtime`` SDK
(``RealtimeSession`` over ``OpenAIRealtimeWebRTC``) and the talk page.

Chromium is Debian's, driven by playwright as in the inspector test; its
microphone is a WAV file (``--use-file-for-fake-audio-capture``, looped). The
SDK is the npm package as published (``tests/webrtc/js``, ``npm ci`` in
``scripts/test.sh``): its browser ESM bundle is served unchanged from the
test server's origin.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import threading
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrealtime import audio
from openrealtime.server import Settings
from openrealtime.server.pipeline import Pipeline
from openrealtime.voice.tts import EspeakSynthesizer
from tests.helpers import CHROMIUM_ARGS
from tests.server.conftest import API_KEY, LiveServer, running_server
from tests.webrtc.helpers import LOOPBACK_ONLY, assert_loopback_peers


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SDK = Path(__file__).parent / "js" / "node_modules" / "@openai" / "agents-realtime"
#: The weather agent of tests/fixtures/weather.yaml, told to call its tool on
#: any words: PocketSphinx does not always hear "weather" in the fake mic.
FIXTURE = """
rules:
  - match: {item_type: function_call_output}
    reply: {text: "It is sunny in Paris, twenty two degrees."}
  - match: {regex: "[a-z]"}
    reply:
      text: "Let me check."
      function_call: {name: get_weather, arguments: {city: Paris}}
default: {text: "Sorry, I only know about the weather."}
"""
#: Seconds to wait for one step of a conversation in the browser.
STEP = 60_000


def chromium_args(wav: Path) -> list[str]:
    return [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        # Test traffic stays on loopback: Chromium leaves loopback out of
        # WebRTC unless told, and hides host addresses behind mDNS names.
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]


def write_wav(path: Path, text: str, pause_ms: int) -> Path:
    """Speech then a pause, 48 kHz mono PCM16 (Chromium loops the file)."""
    speech = b"".join(EspeakSynthesizer().synthesize(text, voice="echo", speed=1.0))
    pcm = audio.silence(600, 24000) + speech + audio.silence(pause_ms, 24000)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        wav.writeframes(audio.resample(pcm, 24000, 48000))
    return path


SDK_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>agents-realtime over WebRTC</title>
<script type="module">
import { RealtimeAgent, RealtimeSession, tool } from "/sdk/openai-realtime-agents.mjs";
const params = new URLSearchParams(location.search);
window.events = [];
window.tools = [];
window.failures = [];
const getWeather = tool({
  name: "get_weather",
  description: "The weather in a city.",
  parameters: {
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  },
  strict: true,
  execute: async ({ city }) => {
    window.tools.push(city);
    return `Sunny in ${city}.`;
  },
});
const agent = new RealtimeAgent({
  name: "Weather",
  instructions: "Answer questions about the weather.",
  tools: [getWeather],
});
const session = new RealtimeSession(agent, { transport: "webrtc", model: "gpt-realtime" });
session.transport.on("*", (event) => window.events.push(event));
session.on("error", (error) => window.failures.push(JSON.stringify(error && error.error || error)));
window.session = session;
try {
  await session.connect({
    apiKey: params.get("key"),
    url: params.get("server") + "/v1/realtime/calls",
  });
  window.callId = session.transport.callId;
  window.connected = true;
} catch (error) {
  window.failures.push(String(error));
}
</script>
"""


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    fixture = tmp_path_factory.mktemp("agent") / "weather.yaml"
    fixture.write_text(FIXTURE)
    pipeline = Pipeline(
        vad="silero",
        transcription="pocketsphinx",
        speech="espeak",
        responder="scripted",
        fixtures=str(fixture),
    )
    settings = Settings(
        api_keys=(API_KEY,), pipeline=pipeline, inspector=True, **LOOPBACK_ONLY
    )
    with running_server(settings, "picows") as live:
        yield live


@pytest.fixture(scope="module")
def sdk_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The browser developer's own site, apart from the API server (its
    pages have their own policy, here an inline script): the test page and
    the SDK's browser bundle, on a loopback port of its own."""
    assert (SDK / "dist" / "bundle").is_dir(), "run npm ci in tests/webrtc/js"
    root = tmp_path_factory.mktemp("site")
    (root / "sdk-test.html").write_text(SDK_PAGE)
    (root / "sdk").symlink_to(SDK / "dist" / "bundle")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()
        thread.join()


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    wav = write_wav(tmp_path / "mic.wav", "What is the weather in Paris?", 3500)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=chromium_args(wav)
        )
        try:
            context = await browser.new_context()
            yield await context.new_page()
            await context.close()
        finally:
            await browser.close()


async def mint(server: LiveServer) -> str:
    async with httpx.AsyncClient() as http:
        minted = await http.post(
            f"{server.http}/v1/realtime/client_secrets",
            json={"session": {"type": "realtime"}},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
    value: str = minted.json()["value"]
    return value


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def test_stock_agents_sdk_over_webrtc(
    browser_server: LiveServer, sdk_site: str, chromium: Any
) -> None:
    """RealtimeSession + OpenAIRealtimeWebRTC: connect, a spoken question,
    a tool call run by the SDK, its spoken answer, and an interruption."""
    page = chromium
    key = await mint(browser_server)
    # The page is on another origin (its own server, localhost) than the API
    # (127.0.0.1), as a browser developer's page is: the offer crosses
    # origins (CORS).
    await page.goto(f"{sdk_site}/sdk-test.html?key={key}&server={browser_server.http}")
    await page.wait_for_function(
        "window.connected || window.failures.length", timeout=STEP
    )
    assert await page.evaluate("window.failures") == []
    call_id = await page.evaluate("window.callId")
    assert call_id and call_id.startswith("rtc_")
    call = browser_server.app.state.realtime.calls.get(call_id)

    # The fake microphone asks for the weather: the scripted agent calls
    # get_weather, the SDK runs the tool and sends its output, then the
    # answer is spoken.
    await page.wait_for_function("window.tools.length > 0", timeout=STEP)
    assert (await page.evaluate("window.tools"))[0] == "Paris"
    await page.wait_for_function(
        """window.events.some(e => e.type === "conversation.item.added"
              && e.item.type === "function_call_output")""",
        timeout=STEP,
    )
    await page.wait_for_function(
        """window.events.some(e => e.type === "response.output_audio_transcript.done"
              && e.transcript.includes("sunny"))""",
        timeout=STEP,
    )
    # The interruption: while a reply plays, session.interrupt() sends
    # output_audio_buffer.clear (and response.cancel); the server clears.
    # A reply may finish playing while the clear is on its way (stopped, not
    # cleared; on a loaded machine "Let me check." is that short): then the
    # next reply is interrupted (the fake microphone keeps asking).
    outcome = None
    for _ in range(5):
        await page.wait_for_function(
            """(() => {
                const started = window.events.filter(e => e.type === "output_audio_buffer.started");
                const ended = window.events.filter(e => e.type === "output_audio_buffer.stopped"
                    || e.type === "output_audio_buffer.cleared");
                const playing = started.filter(s => !ended.some(e => e.response_id === s.response_id));
                if (playing.length) { window.session.interrupt(); window.interrupted = playing[0].response_id; return true; }
                return false;
            })()""",
            timeout=STEP,
            polling=50,
        )
        interrupted = await page.evaluate("window.interrupted")
        handle = await page.wait_for_function(
            f"""window.events.find(e => (e.type === "output_audio_buffer.cleared"
                  || e.type === "output_audio_buffer.stopped")
                  && e.response_id === {json.dumps(interrupted)})?.type""",
            timeout=STEP,
        )
        outcome = await handle.json_value()
        if outcome == "output_audio_buffer.cleared":
            break
    assert outcome == "output_audio_buffer.cleared"
    events = await page.evaluate("window.events")
    seen = types(events)
    assert "response.output_audio.delta" not in seen
    assert "session.updated" in seen
    # One race is the protocol's, not ours: interrupt() sends response.cancel
    # while it has not yet seen response.done, so a reply whose generation
    # ended a moment earlier (its audio still playing) is answered
    # response_cancel_not_active, as the hosted API answers it. Any other
    # error, or this one without a response.done before it, fails.
    for failure in await page.evaluate("window.failures"):
        error = json.loads(failure)
        assert error["error"]["code"] == "response_cancel_not_active", failure
        at = next(
            i for i, e in enumerate(events) if e.get("event_id") == error["event_id"]
        )
        created = [
            e["response"]["id"] for e in events[:at] if e["type"] == "response.created"
        ]
        done = {
            e["response"]["id"] for e in events[:at] if e["type"] == "response.done"
        }
        assert created and created[-1] in done, failure
    # Chromium checked every pair, from each of its interfaces' sockets:
    # the server answered (and so learned, and sent to) loopback ones only.
    assert_loopback_peers(call.pc)
    await page.evaluate("window.session.close()")


@pytest.mark.parametrize("transport", ["WebRTC", "WebSocket", "fallback"])
async def test_talk_page_one_spoken_turn(
    browser_server: LiveServer,
    chromium: Any,
    transport: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/talk: the operator's key entered once, Talk, one spoken turn with
    both sides transcribed, and a link to the session in the inspector;
    over WebRTC, over the WebSocket when asked, and over the WebSocket when
    the call fails (here: a server without aiortc)."""
    from playwright.async_api import expect

    page = chromium
    await page.set_viewport_size({"width": 380, "height": 800})  # a phone
    await page.goto(f"{browser_server.http}/talk")
    await page.click("#talk")
    # Auth is on: the page asks for the key once.
    await expect(page.locator("#key-form")).to_be_visible()
    await expect(page.locator("#status")).to_contain_text("API key")
    await page.fill("#key", API_KEY)
    await page.click("#key-form button")
    if transport == "WebSocket":
        await page.check("#websocket")
    calls: list[int] = []
    page.on(
        "response",
        lambda r: calls.append(r.status) if r.url.endswith("/calls") else None,
    )
    fallback = transport == "fallback"
    if fallback:
        from openrealtime.server import webrtc

        monkeypatch.setattr(webrtc, "missing", lambda: webrtc.MISSING)
        transport = "WebSocket"
    await page.click("#talk")
    await expect(page.locator("#status")).to_contain_text(transport, timeout=STEP)
    # PocketSphinx hears espeak through Opus and a browser's microphone
    # path well enough, not word for word: some words, recognised.
    user = page.locator("#transcript li.user:not(.pending) .text").first
    await expect(user).to_have_text(
        re.compile(r"^[a-z' ]*[a-z]{2,}[a-z' ]*$"), timeout=STEP
    )
    # The scripted agent answers (this page gives it no tools).
    assistant = page.locator("#transcript li.assistant:not(.pending)").first
    await expect(assistant).to_contain_text(
        re.compile("weather|check", re.I), timeout=STEP
    )
    # The offer was posted (and refused) only where WebRTC was tried.
    assert calls == {"WebRTC": [201], "WebSocket": [501] if fallback else []}[transport]
    session_id = await page.locator("#session-id").text_content()
    assert session_id and session_id.startswith("sess_")
    inspect = page.locator("#inspect")
    await expect(inspect).to_be_visible()
    assert await inspect.get_attribute("href") == f"/inspector#{session_id}"
    # The key is kept in the browser, never in the page's address.
    assert API_KEY not in page.url
    await page.click("#hangup")
    await expect(page.locator("#status")).to_contain_text("ended")
    realtime = browser_server.app.state.realtime
    for _ in range(100):
        if not len(realtime.calls):
            break
        await page.wait_for_timeout(100)
    assert len(realtime.calls) == 0
