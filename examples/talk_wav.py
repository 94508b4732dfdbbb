"""Speak a WAV file to a Realtime server and save its spoken reply.

    python examples/talk_wav.py question.wav reply.wav [ws://127.0.0.1:8000/v1]

Uses only the official openai SDK (and the standard library): the WAV is
sent as 24 kHz PCM16 in 20 ms chunks, server VAD ends the turn, and the
reply's audio is written to a WAV file. Works against openrealtime or the
hosted API.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import wave

from openai import AsyncOpenAI


def read_pcm24k(path: str) -> bytes:
    """A 16-bit mono 24 kHz WAV's samples (convert other files with sox first)."""
    with wave.open(path, "rb") as wav:
        if (wav.getsampwidth(), wav.getnchannels(), wav.getframerate()) != (
            2,
            1,
            24000,
        ):
            raise SystemExit(
                f"{path}: need 16-bit mono 24 kHz "
                "(sox in.wav -r 24000 -c 1 -b 16 out.wav)"
            )
        return wav.readframes(wav.getnframes())


async def talk(question: str, reply: str, base_url: str) -> str:
    """Send ``question`` (a WAV), write the spoken answer to ``reply``.

    Returns the transcript of the answer.
    """
    client = AsyncOpenAI(api_key="local", websocket_base_url=base_url)
    pcm = read_pcm24k(question) + bytes(48000)  # one second of silence ends the turn
    audio_out = bytearray()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            }
        )
        for i in range(0, len(pcm), 960):  # 20 ms chunks
            await conn.input_audio_buffer.append(
                audio=base64.b64encode(pcm[i : i + 960]).decode()
            )
        transcript = ""
        async for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                print("you said:", event.transcript)
            elif event.type == "response.output_audio.delta":
                audio_out += base64.b64decode(event.delta)
            elif event.type == "response.output_audio_transcript.done":
                transcript = event.transcript
            elif event.type == "response.done":
                break
    with wave.open(reply, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24000)
        wav.writeframes(bytes(audio_out))
    print("reply:", transcript, f"({len(audio_out) / 48000:.1f} s of audio in {reply})")
    return transcript


if __name__ == "__main__":
    url = sys.argv[3] if len(sys.argv) > 3 else "ws://127.0.0.1:8000/v1"
    asyncio.run(talk(sys.argv[1], sys.argv[2], url))
