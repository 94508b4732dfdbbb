"""Take docs/inspector.png: a server with the inspector, a few sessions, Chromium.

    .venv/bin/python scripts/inspector_screenshot.py [OUTPUT] [WIDTH]

WIDTH is the window's width in CSS pixels (default 1440; try 1024 or 800).

Needs Debian's chromium and the playwright package (the ``test`` extra).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from openai import AsyncOpenAI
from playwright.async_api import async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openrealtime.server import Settings  # noqa: E402
from tests.conformance.scenarios import WEATHER_TOOL  # noqa: E402
from tests.server.conftest import running_server  # noqa: E402


KEY = "sk-docs"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def until(conn: object, event_type: str) -> None:
    for _ in range(500):
        if (await conn.recv()).type == event_type:  # type: ignore[attr-defined]
            return
    raise AssertionError(event_type)


async def main(output: Path, width: int = 1440) -> None:
    settings = Settings(api_keys=(KEY,), inspector=True)
    with running_server(settings) as live:
        client = AsyncOpenAI(api_key=KEY, websocket_base_url=live.ws_base)
        async with client.realtime.connect(model="gpt-realtime-mini") as conn:
            await until(conn, "session.created")
            await conn.session.update(
                session={"type": "realtime", "instructions": "Be terse."}
            )
            await until(conn, "session.updated")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            created = await conn.recv()
            await conn.session.update(
                session={
                    "type": "realtime",
                    "instructions": "You are a helpful weather assistant. Be brief.",
                    "tools": [WEATHER_TOOL],
                    "audio": {
                        "input": {
                            "turn_detection": {"type": "server_vad", "threshold": 0.7}
                        },
                        "output": {"voice": "marin"},
                    },
                }
            )
            await until(conn, "session.updated")
            await conn.send(
                {
                    "type": "session.update",
                    "event_id": "evt_switch_vad",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {
                                "turn_detection": {
                                    "type": "semantic_vad",
                                    "threshold": 0.5,
                                }
                            }
                        },
                    },
                }
            )
            await until(conn, "error")
            await conn.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Hello! Is it sunny?"}],
                }
            )
            await conn.response.create()
            await until(conn, "response.done")
            async with async_playwright() as p:
                browser = await p.chromium.launch(
                    executable_path="/usr/bin/chromium", args=ARGS
                )
                page = await browser.new_page(viewport={"width": width, "height": 900})
                await page.goto(f"{live.http}/inspector?key={KEY}#{created.session.id}")
                await page.wait_for_selector(".update.rejected")
                await page.wait_for_selector('.entry[data-type="response.done"]')
                await page.locator(
                    '.entry[data-type="response.output_audio.delta"]'
                ).wait_for()
                await page.screenshot(path=str(output), full_page=True)
                await browser.close()
        await client.close()


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/inspector.png")
    asyncio.run(main(target, int(sys.argv[2]) if len(sys.argv) > 2 else 1440))
    print(f"wrote {target}")
