"""The inspector: its registry, its API and login, and the page in Chromium.

The registry is checked through the JSON API of a real server, which shows
exactly what the page renders; the page itself is driven in headless
Chromium (Debian's ``chromium``, through playwright) with the official SDK
making the session.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect

from openrealtime.cli import build_parser, build_settings, settings_env
from openrealtime.ids import CountingIds
from openrealtime.server import Settings, create_app
from openrealtime.server.inspector import COOKIE, Inspector
from openrealtime.session import Session
from tests.server.conftest import API_KEY, DRIVERS, LiveServer, running_server


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Upper bound on events read while waiting for one.
MAX_EVENTS = 200


@pytest.fixture(scope="module", params=DRIVERS)
def inspected(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A server with the inspector on and authentication on (each driver)."""
    settings = Settings(
        api_keys=(API_KEY,), inspector=True, inspector_events=50, pace=0
    )
    with running_server(settings, request.param) as live:
        yield live


def ws_url(server: LiveServer) -> str:
    return server.ws_url(model="gpt-realtime")


async def open_ws(server: LiveServer) -> Any:
    return connect(
        ws_url(server),
        additional_headers={"Authorization": f"Bearer {API_KEY}"},
        proxy=None,
    )


async def recv_type(ws: Any, event_type: str) -> dict[str, Any]:
    for _ in range(MAX_EVENTS):
        event = json.loads(await ws.recv())
        if event["type"] == event_type:
            return event  # type: ignore[no-any-return]
    raise AssertionError(f"no {event_type}")


def api(server: LiveServer, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.http, headers=headers) as client:
        return client.get(f"/inspector{path}", **kw)


# --- Registry, through the API -------------------------------------------------------


async def test_updates_paired_with_outcomes_and_diffed(inspected: LiveServer) -> None:
    async with await open_ws(inspected) as ws:
        created = await recv_type(ws, "session.created")
        sid = created["session"]["id"]
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "event_id": "evt_ok",
                    "session": {
                        "type": "realtime",
                        "instructions": "Be brief.",
                        "audio": {"input": {"turn_detection": None}},
                    },
                }
            )
        )
        await recv_type(ws, "session.updated")
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "event_id": "evt_bad",
                    "session": {"type": "realtime", "audio": {"output": {"voice": 5}}},
                }
            )
        )
        error = await recv_type(ws, "error")
        snapshot = (
            await asyncio.to_thread(api, inspected, f"/api/sessions/{sid}")
        ).json()
    accepted, rejected = snapshot["updates"]
    assert accepted["status"] == "accepted"
    assert accepted["event_id"] == "evt_ok"
    changes = {c["path"]: c for c in accepted["changes"]}
    assert changes["instructions"]["new"] == "Be brief."
    assert changes["audio.input.turn_detection"]["op"] == "changed"
    assert changes["audio.input.turn_detection"]["new"] is None
    assert changes["audio.input.turn_detection"]["old"]["type"] == "server_vad"
    assert rejected["status"] == "rejected"
    assert rejected["error"]["code"] == error["error"]["code"]
    assert rejected["error"]["param"] == "session.audio.output.voice"
    assert rejected["error"]["message"] == error["error"]["message"]
    assert rejected["request"] == {
        "type": "realtime",
        "audio": {"output": {"voice": 5}},
    }
    # The config is the last session.updated's; the rejected update left it.
    assert snapshot["config"]["instructions"] == "Be brief."
    assert snapshot["config"]["audio"]["input"]["turn_detection"] is None
    summary = snapshot["session"]
    assert summary["model"] == "gpt-realtime" and summary["kind"] == "realtime"
    assert summary["events_in"] == 2 and summary["events_out"] == 3


async def test_closed_session_has_code_and_is_listed(inspected: LiveServer) -> None:
    async with await open_ws(inspected) as ws:
        sid = (await recv_type(ws, "session.created"))["session"]["id"]
        await ws.send(json.dumps({"type": "session.close"}))
        await ws.wait_closed()
    for _ in range(100):  # the server sees the end after the client does
        listed = (await asyncio.to_thread(api, inspected, "/api/sessions")).json()
        mine = next(s for s in listed["sessions"] if s["id"] == sid)
        if not mine["live"]:
            break
        await asyncio.sleep(0.02)
    assert mine["live"] is False
    assert mine["close_code"] == 1000
    assert mine["closed"] >= mine["opened"]


async def test_audio_deltas_collapse_into_one_entry(inspected: LiveServer) -> None:
    chunk = base64.b64encode(b"\0\0" * 2400).decode()  # 100 ms of silence
    async with await open_ws(inspected) as ws:
        sid = (await recv_type(ws, "session.created"))["session"]["id"]
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {"input": {"turn_detection": None}},
                    },
                }
            )
        )
        await recv_type(ws, "session.updated")
        for _ in range(3):
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": chunk})
            )
        await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        await recv_type(ws, "input_audio_buffer.cleared")
        snapshot = (
            await asyncio.to_thread(api, inspected, f"/api/sessions/{sid}")
        ).json()
    types = [e["type"] for e in snapshot["events"]]
    assert types == [
        "session.created",
        "session.update",
        "session.updated",
        "input_audio_buffer.append",
        "input_audio_buffer.clear",
        "input_audio_buffer.cleared",
    ]
    audio = snapshot["events"][3]
    assert audio["audio_bytes"] == 3 * 4800 and audio["count"] == 3
    assert audio["dir"] == "<" and "event" not in audio


async def test_registry_is_bounded(driver: str) -> None:
    settings = Settings(inspector=True, inspector_sessions=2, inspector_events=3)
    with running_server(settings, driver) as live:
        ids = []
        for _ in range(3):
            async with connect(ws_url(live), proxy=None) as ws:
                ids.append((await recv_type(ws, "session.created"))["session"]["id"])
                for _ in range(4):
                    await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
                    await recv_type(ws, "input_audio_buffer.cleared")
        inspector = live.app.state.inspector
        assert len(inspector.sessions) == 2
        assert ids[0] not in inspector.sessions
        record = inspector.sessions[ids[2]]
        assert len(record.events) == 3
        assert record.counts == {"<": 4, ">": 5}


def test_off_by_default_with_no_observer() -> None:
    app = create_app(Settings(), warn_no_auth=False)
    assert app.state.inspector is None
    assert app.state.realtime.observer is None
    paths = {getattr(r, "path", "") for r in app.routes}
    assert [p for p in paths if p.startswith("/inspector")] == ["/inspector"]


def test_off_says_how_to_turn_it_on() -> None:
    """Without --inspector, /inspector is a 404 that names the flag."""
    with running_server(Settings()) as live:
        with httpx.Client() as client:
            response = client.get(f"{live.http}/inspector")
            assets = client.get(f"{live.http}/inspector/api/sessions")
    assert response.status_code == 404
    assert "--inspector" in response.text
    assert "OPENREALTIME_INSPECTOR=1" in response.text
    assert assets.status_code == 404


def test_observer_passed_to_create_app_still_sees_frames() -> None:
    seen: list[str] = []

    def observer(session: Session) -> Any:
        return lambda direction, data: seen.append(direction)

    app = create_app(Settings(inspector=True), observer=observer, warn_no_auth=False)
    both = app.state.realtime.observer(Session(now=0.0, ids=CountingIds()))
    both("<", b'{"type":"input_audio_buffer.clear"}')
    both.closed(1000, "")
    assert seen == ["<"]
    (record,) = app.state.inspector.sessions.values()
    assert record.close_code == 1000 and record.counts["<"] == 1


def test_non_events_are_logged_as_such() -> None:
    inspector = Inspector()
    record = inspector.observe(Session(now=0.0, ids=CountingIds()))
    record("<", b"not json")
    record("<", b"\xff\xfe")
    record("<", b"[1]")
    assert [e["type"] for e in record.events] == [
        "(invalid JSON)",
        "(binary frame)",
        "(not an event)",
    ]
    assert record.events[1]["event"] == {"bytes": 2}


# --- Authentication ------------------------------------------------------------------


def test_page_needs_the_key(inspected: LiveServer) -> None:
    with httpx.Client(base_url=inspected.http) as client:
        login = client.get("/inspector")
        assert login.status_code == 401
        assert 'name="key"' in login.text and "not valid" not in login.text
        wrong = client.get("/inspector", params={"key": "sk-wrong"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        assert client.get("/inspector/api/sessions").status_code == 401


def test_key_in_query_becomes_a_cookie_and_is_not_logged(
    inspected: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    with httpx.Client(base_url=inspected.http, follow_redirects=True) as client:
        response = client.get("/inspector", params={"key": API_KEY})
        assert response.status_code == 200  # after the redirect
        assert response.history[0].status_code == 303
        assert response.history[0].headers["location"] == "/inspector"
        cookie = response.history[0].headers["set-cookie"]
        assert API_KEY not in cookie
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert "openrealtime inspector" in response.text
        # The cookie opens the API.
        assert client.get("/inspector/api/sessions").status_code == 200
        client.cookies.clear()
        assert client.get("/inspector/api/sessions").status_code == 401
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/inspector" in logged
    assert API_KEY not in logged


def test_login_form(inspected: LiveServer) -> None:
    with httpx.Client(base_url=inspected.http, follow_redirects=True) as client:
        bad = client.post("/inspector/login", data={"key": "nope"})
        assert bad.status_code == 401 and "not valid" in bad.text
        good = client.post("/inspector/login", data={"key": API_KEY})
        assert good.status_code == 200 and "openrealtime inspector" in good.text
        assert client.cookies.get(COOKIE)
        assert client.get("/inspector/api/sessions").status_code == 200
        client.get("/inspector/logout")
        assert client.get("/inspector/api/sessions").status_code == 401


async def test_live_socket_needs_the_key(inspected: LiveServer) -> None:
    url = inspected.ws_url("/inspector/api/sessions/sess_x/live")
    with pytest.raises(Exception, match="403"):
        async with connect(url, proxy=None):
            pass  # pragma: no cover
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with connect(url, additional_headers=headers, proxy=None) as ws:
        await ws.wait_closed()
        assert ws.close_reason == "no such session"


def test_static_assets_and_unknown_ones(inspected: LiveServer) -> None:
    with httpx.Client(base_url=inspected.http) as client:
        js = client.get("/inspector/static/inspector.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert client.get("/inspector/static/inspector.css").status_code == 200
        assert client.get("/inspector/static/secrets.py").status_code == 404
    assert api(inspected, "/api/sessions/sess_nope").status_code == 404


def test_flags_and_environment() -> None:
    args = build_parser().parse_args(
        ["serve", "--inspector", "--inspector-sessions", "7", "--inspector-events", "9"]
    )
    settings = build_settings(args, environ={})
    assert settings.inspector and settings.inspector_sessions == 7
    assert settings.inspector_events == 9
    assert settings_env(args)["OPENREALTIME_INSPECTOR"] == "1"
    env = Settings.from_env({"OPENREALTIME_INSPECTOR": "1"})
    assert env.inspector
    assert not build_settings(
        build_parser().parse_args(["serve"]), environ={}
    ).inspector


# --- The page, in Chromium -----------------------------------------------------------


@pytest.fixture
async def page(inspected: LiveServer) -> AsyncIterator[Any]:
    if not shutil.which("chromium") and not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(
                viewport={"width": 1400, "height": 1000}
            )
            yield await context.new_page()
            await context.close()
        finally:
            await browser.close()


async def test_page_shows_session_updates_and_live_log(
    inspected: LiveServer, page: Any
) -> None:
    from playwright.async_api import expect

    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=inspected.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        sid = created.session.id
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"output": {"voice": "marin"}},
            }
        )
        assert (await conn.recv()).type == "session.updated"
        await conn.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {
                        "input": {
                            "turn_detection": {"type": "semantic_vad", "threshold": 0.5}
                        }
                    },
                },
            }
        )
        assert (await conn.recv()).type == "error"

        await page.goto(f"{inspected.http}/inspector?key={API_KEY}#{sid}")
        assert API_KEY not in page.url
        row = page.locator(f'#sessions tr[data-id="{sid}"]')
        await expect(row).to_contain_text("gpt-realtime")
        await expect(row).to_contain_text("realtime")
        await expect(page.locator("#detail-title")).to_have_text(sid)

        # The effective config, as a tree.
        tree = page.locator("#config-tree")
        await expect(tree.locator('[data-path="instructions"]')).to_contain_text(
            '"Be brief."'
        )
        await expect(tree.locator('[data-path="audio.output.voice"]')).to_contain_text(
            '"marin"'
        )

        # The accepted update's diff, the rejected one's error.
        accepted = page.locator(".update.accepted")
        await expect(accepted).to_have_count(1)
        voice = accepted.locator(".diff-row", has_text="audio.output.voice")
        await expect(voice).to_contain_text('"alloy"')
        await expect(voice).to_contain_text('"marin"')
        await expect(
            accepted.locator(".diff-row", has_text="instructions")
        ).to_contain_text('"Be brief."')
        rejected = page.locator(".update.rejected")
        await expect(rejected).to_have_count(1)
        await expect(rejected.locator(".error")).to_contain_text("unknown_parameter")
        await expect(rejected.locator(".error")).to_contain_text(
            "session.audio.input.turn_detection.threshold"
        )
        await expect(rejected.locator(".error")).to_contain_text(
            "Unknown parameter: 'session.audio.input.turn_detection.threshold'."
        )

        # The live log: what happens now appears, audio collapsed.
        log = page.locator("#log")
        await expect(page.locator("#log-state")).to_have_text("live")
        await expect(log.locator(".entry")).to_have_count(5)
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hello inspector"}],
            }
        )
        await conn.response.create()
        for _ in range(MAX_EVENTS):
            if (await conn.recv()).type == "response.done":
                break
        await expect(
            log.locator('.entry.client[data-type="conversation.item.create"]')
        ).to_have_count(1)
        await expect(
            log.locator('.entry.server[data-type="response.done"]')
        ).to_have_count(1)
        # Consecutive deltas show as one entry: the transcript's two words
        # come between the audio deltas, so there are two.
        audio = log.locator('.entry[data-type="response.output_audio.delta"]')
        await expect(audio).to_have_count(2)
        await expect(audio.first).to_contain_text("bytes audio")
        await expect(audio.first).to_contain_text("events)")
        # Clicking an event shows its JSON.
        await log.locator(
            '.entry[data-type="response.output_audio_transcript.delta"]'
        ).first.click()
        await expect(log.locator("pre")).to_contain_text('"delta": "Hello "')
    await client.close()
    # The close reaches the page as well.
    await expect(page.locator("#detail-meta")).to_contain_text("closed")


async def _session_with_updates(live: LiveServer) -> str:
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=live.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        sid: str = (await conn.recv()).session.id
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "A long instruction, " * 20,
                "audio": {
                    "input": {
                        "turn_detection": {"type": "server_vad", "threshold": 0.7}
                    }
                },
            }
        )
        assert (await conn.recv()).type == "session.updated"
    await client.close()
    return sid


_LAYOUT = """() => {
  const box = (sel) => document.querySelector(sel).getBoundingClientRect();
  const aside = box("aside"), detail = box("#detail");
  return {
    scroll: document.documentElement.scrollWidth, width: window.innerWidth,
    asideBottom: aside.bottom, asideRight: aside.right,
    detailTop: detail.top, detailLeft: detail.left, detailWidth: detail.width,
  };
}"""


@pytest.mark.parametrize("width", [1024, 800])
async def test_narrow_window_stacks_the_panels(
    inspected: LiveServer, page: Any, width: int
) -> None:
    """No sideways scroll at 1024 or 800 px: the details go under the sessions,
    the full width of the window."""
    sid = await _session_with_updates(inspected)
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(f"{inspected.http}/inspector?key={API_KEY}#{sid}")
    await page.locator(".update.accepted").wait_for()
    layout = await page.evaluate(_LAYOUT)
    assert layout["scroll"] <= layout["width"], layout
    assert layout["detailTop"] >= layout["asideBottom"], layout
    assert layout["detailWidth"] >= width - 60, layout


async def test_wide_window_keeps_the_panels_side_by_side(
    inspected: LiveServer, page: Any
) -> None:
    sid = await _session_with_updates(inspected)
    await page.goto(f"{inspected.http}/inspector?key={API_KEY}#{sid}")
    await page.locator(".update.accepted").wait_for()
    layout = await page.evaluate(_LAYOUT)
    assert layout["scroll"] <= layout["width"], layout
    assert layout["detailLeft"] >= layout["asideRight"], layout


async def test_loading_until_the_first_data(inspected: LiveServer, page: Any) -> None:
    """Before the first data: "loading…", not "No sessions yet" nor "No
    session.update yet."; a session that is gone says so."""
    from playwright.async_api import expect

    sid = await _session_with_updates(inspected)
    released = asyncio.Event()

    async def hold(route: Any) -> None:
        await released.wait()
        await route.continue_()

    await page.route("**/inspector/api/sessions", hold)
    await page.route_web_socket("**/live", lambda ws: None)  # never answers
    await page.goto(f"{inspected.http}/inspector?key={API_KEY}#{sid}")
    await expect(page.locator("#sessions-loading")).to_have_text("loading…")
    await expect(page.locator("#no-sessions")).to_be_hidden()
    released.set()
    await expect(page.locator("#sessions-loading")).to_be_hidden()
    await expect(page.locator(f'#sessions tr[data-id="{sid}"]')).to_be_visible()
    # The session's own data has not come yet (its live socket is held).
    await expect(page.locator("#detail-meta")).to_have_text("loading…")
    await expect(page.locator("#config-tree")).to_have_text("loading…")
    await expect(page.locator("#no-updates")).to_have_text("loading…")

    await page.unroute_all()
    page2 = await page.context.new_page()
    await page2.goto(f"{inspected.http}/inspector#sess_gone")
    await expect(page2.locator("#no-updates")).to_have_text("no such session")
    await expect(page2.locator("#detail-meta")).to_have_text("no such session")
