"""Ask a Realtime server a spoken question; save its spoken reply to a WAV file.

    python examples/talk_wav.py examples/weather.wav reply.wav
    python examples/talk_wav.py --say "What is the weather in Paris?" reply.wav
    python examples/talk_wav.py question.wav reply.wav --url ws://host:8000/v1

The question is a PCM WAV file (mono or stereo, any sample rate: it is
resampled to the API's 24 kHz with ``openrealtime.audio``) or, with ``--say``,
text spoken by the server's own speech engine (espeak-ng, in the ``cedar``
voice, the one the built-in recognizer hears best; it runs here, so espeak-ng
must be installed on this machine). The audio is sent in 20 ms chunks and
server VAD ends the turn. When the reply calls a function, the example answers
it (a canned weather report) and waits for the spoken follow-up, as an agent
would. The client side is the official openai SDK, so it works against
openrealtime or the hosted API; it waits up to ``--wait`` seconds for the
server to start listening.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
import wave
from urllib.parse import urlsplit

import numpy as np
from openai import AsyncOpenAI

from openrealtime import audio


RATE = 24000  # the API's audio/pcm rate
#: The tool the agent may call, and what it returns (the whole weather service).
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
WEATHER = {"forecast": "sunny", "temperature_c": 22}


def read_pcm24k(path: str) -> bytes:
    """A PCM WAV file as 16-bit mono 24 kHz samples (any rate, mono or stereo)."""
    with wave.open(path, "rb") as wav:
        width, channels, rate = (
            wav.getsampwidth(),
            wav.getnchannels(),
            wav.getframerate(),
        )
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise SystemExit(f"{path}: need 16-bit PCM samples, not {8 * width}-bit")
    if channels > 1:  # average the channels into one
        samples = np.frombuffer(frames, "<i2").reshape(-1, channels)
        frames = samples.mean(axis=1).round().astype("<i2").tobytes()
    return audio.resample(frames, rate, RATE) if rate != RATE else frames


def say(text: str) -> bytes:
    """``text`` spoken by the server's speech engine, as 24 kHz PCM16."""
    from openrealtime.voice.tts import EspeakSynthesizer, available

    if not available():
        raise SystemExit("--say needs espeak-ng: sudo apt-get install espeak-ng")
    return b"".join(EspeakSynthesizer().synthesize(text, voice="cedar", speed=1.0))


async def wait_for_server(url: str, seconds: float) -> None:
    """Return once something listens at ``url``'s host and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection(parts.hostname, port)
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"nothing listens at {url}: start the server"
                ) from None
            await asyncio.sleep(0.2)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def talk(question: str | bytes, reply: str, base_url: str) -> str:
    """Speak ``question`` (a WAV path, or 24 kHz PCM16), write the answer to ``reply``.

    Returns the transcript of the spoken answer.
    """
    pcm = read_pcm24k(question) if isinstance(question, str) else question
    pcm += bytes(RATE * 2)  # one second of silence ends the turn
    client = AsyncOpenAI(
        api_key=os.environ.get("OPENAI_API_KEY", "local"), websocket_base_url=base_url
    )
    audio_out = bytearray()
    transcripts: list[str] = []
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "Answer weather questions briefly; use get_weather.",
                "tools": [WEATHER_TOOL],
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            }
        )
        for i in range(0, len(pcm), 960):  # 20 ms chunks
            await conn.input_audio_buffer.append(
                audio=base64.b64encode(pcm[i : i + 960]).decode()
            )
        async for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                print("you said:", event.transcript)
            elif event.type == "response.output_audio.delta":
                audio_out += base64.b64decode(event.delta)
            elif event.type == "response.output_audio_transcript.done":
                print("reply:", event.transcript)
                transcripts.append(event.transcript)
            elif event.type == "response.done":
                calls = [
                    o for o in event.response.output or [] if o.type == "function_call"
                ]
                if not calls:
                    break
                for call in calls:  # answer each call, then ask for the follow-up
                    print(f"function call: {call.name}({call.arguments})")
                    await conn.conversation.item.create(
                        item={
                            "type": "function_call_output",
                            "call_id": call.call_id or "",
                            "output": json.dumps(WEATHER),
                        }
                    )
                await conn.response.create()
    with wave.open(reply, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(audio_out))
    print(f"{len(audio_out) / (2 * RATE):.1f} s of reply audio in {reply}")
    return " ".join(transcripts)


def main() -> None:
    port = os.environ.get("OPENREALTIME_PORT") or "8000"  # as the server reads it
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", help="the question, a WAV file")
    parser.add_argument("reply", help="where to write the spoken reply (WAV)")
    parser.add_argument("--say", metavar="TEXT", help="speak TEXT instead of a file")
    parser.add_argument(
        "--url",
        default=f"ws://127.0.0.1:{port}/v1",
        help="the server's base URL (default %(default)s)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the server to listen (default 30)",
    )
    args = parser.parse_args()
    if (args.question is None) == (args.say is None):
        parser.error("give a question WAV file or --say TEXT (one of them)")
    question = say(args.say) if args.say is not None else args.question
    asyncio.run(wait_for_server(args.url, args.wait))
    asyncio.run(talk(question, args.reply, args.url))


if __name__ == "__main__":
    main()
