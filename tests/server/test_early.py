"""Early transcription: the decode starts at the first silence, before VAD commits."""

from __future__ import annotations

import base64

from openrealtime import audio
from openrealtime.server.early import EarlyTranscription
from openrealtime.session import Session, Transcribe
from openrealtime.voice.engines import TranscriberRouter
from openrealtime.voice.whisper import WhisperTranscriber
from tests.helpers import new_session, send, update
from tests.voice.test_whisper import human_clip


CLIP = "librivox/sense_and_sensibility_01_austen_64kb-0880.wav"


def configure(
    session: Session, silence_ms: int = 500, prompt: str | None = None
) -> None:
    transcription: dict[str, object] = {"model": "whisper-1"}
    if prompt is not None:
        transcription["prompt"] = prompt
    update(
        session,
        {
            "audio": {
                "input": {
                    "transcription": transcription,
                    "turn_detection": {
                        "type": "server_vad",
                        "silence_duration_ms": silence_ms,
                        "create_response": False,
                    },
                }
            }
        },
    )


def stream(
    session: Session, early: EarlyTranscription, pcm24: bytes
) -> list[Transcribe]:
    """Append 20 ms chunks as a driver does, observing after each."""
    actions: list[Transcribe] = []
    for i in range(0, len(pcm24), 960):
        data = base64.b64encode(pcm24[i : i + 960]).decode()
        send(session, {"type": "input_audio_buffer.append", "audio": data})
        actions += [a for a in session.actions_to_take() if isinstance(a, Transcribe)]
        early.observe(session)
    return actions


def speech() -> bytes:
    pcm, rate = human_clip(CLIP)
    return audio.silence(300, 24000) + audio.resample(pcm, rate, 24000)


async def test_the_early_decode_is_the_transcript() -> None:
    """Started during the trailing silence, it equals the decode after commit."""
    whisper = WhisperTranscriber()
    router = TranscriberRouter(whisper, "whisper")
    session = new_session()
    configure(session)
    early = EarlyTranscription(router)
    assert stream(session, early, speech()) == []
    assert early._early is None  # the clip ends as the speech does
    # 150 ms into the silence: not committed (500 ms), but decoding already.
    assert stream(session, early, audio.silence(150, 24000)) == []
    assert early._early is not None
    (action,) = stream(session, early, audio.silence(550, 24000))
    task = early.take(action)
    assert task is not None
    found = await task
    normal = list(
        whisper.transcribe(action.pcm16, action.rate, language=None, prompt=None)
    )
    assert found == normal and "young" in "".join(found)
    assert early.take(action) is None  # taken once


async def test_changed_settings_or_more_speech_are_not_reused() -> None:
    whisper = WhisperTranscriber(beam_size=1)
    session = new_session()
    configure(session)
    early = EarlyTranscription(whisper)
    stream(session, early, speech() + audio.silence(150, 24000))
    assert early._early is not None
    first = early._early.task
    # The prompt changes before the commit: the early decode does not hold.
    configure(session, prompt="Jane Austen")
    (action,) = stream(session, early, audio.silence(700, 24000))
    assert early.take(action) is None
    assert first.cancelling() or first.cancelled()
    # Speech after the early decode's audio (a second sentence in the turn):
    session = new_session()
    configure(session, silence_ms=1000)
    early = EarlyTranscription(whisper)
    stream(session, early, speech() + audio.silence(300, 24000))
    started = early._early
    assert started is not None
    await started.task  # let it finish, so the next pause may start another
    stream(session, early, audio.tone(400, 24000, 300.0, 0.5))
    (action,) = stream(session, early, audio.silence(1200, 24000))
    second = early._early
    assert second is not None and second is not started
    assert early.take(action) is second.task  # it covers the whole turn
    await second.task
    early.discard()


async def test_an_early_decode_without_logprobs_does_not_serve_one_that_wants_them() -> (
    None
):
    """``include`` asks for logprobs after the early decode began without:
    the normal decode runs instead; one begun with them carries them."""
    whisper = WhisperTranscriber(beam_size=1)
    session = new_session()
    configure(session)
    early = EarlyTranscription(whisper)
    (action,) = stream(session, early, speech() + audio.silence(700, 24000))
    assert early.take(action, logprobs=True) is None
    session = new_session()
    configure(session)
    update(session, {"include": ["item.input_audio_transcription.logprobs"]})
    early = EarlyTranscription(whisper)
    (action,) = stream(session, early, speech() + audio.silence(700, 24000))
    task = early.take(action, logprobs=True)
    assert task is not None
    found = await task
    assert found and all(getattr(d, "logprobs", None) for d in found)
