"""faster-whisper: real human speech, the model's three sources, language and prompt.

The human clips are LibriVox and "cards" recordings from Debian's
``pocketsphinx-testdata`` (scripts/apt-packages.txt); the model is the
packaged ``tiny.en`` of the ``whisper`` extra. Each decode costs about a
second on a loaded 2-core box, so the tests share one model and few clips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from openrealtime import audio
from openrealtime.voice.asr import UnsupportedLanguage
from openrealtime.voice.whisper import (
    PACKAGED_SHA256,
    ModelError,
    WhisperTranscriber,
    packaged_model_dir,
    resolve_model,
)


DATA = Path("/usr/share/pocketsphinx/test/data")


def human_clip(name: str) -> tuple[bytes, int]:
    """A recording from pocketsphinx-testdata as PCM16 and its rate."""
    with wave.open(str(DATA / name)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


@pytest.fixture(scope="module")
def whisper() -> Iterator[WhisperTranscriber]:
    yield WhisperTranscriber()


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c == " " else " " for c in text.lower()).split()


def test_human_speech_is_understood(whisper: WhisperTranscriber) -> None:
    """A LibriVox sentence, at 16 kHz and resampled from 24 kHz, word for word."""
    pcm, rate = human_clip("librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
    reference = "he was not an ill disposed young man".split()
    deltas = list(whisper.transcribe(pcm, rate, language=None, prompt=None))
    assert len(deltas) >= 5, deltas  # one delta per word
    assert not deltas[0].startswith(" ") and all(d.startswith(" ") for d in deltas[1:])
    got = words("".join(deltas))
    # tiny.en hears "ill-disposed" as "old-sposed" without a hint (1-2 of 8 words).
    assert len(set(reference) - set(got)) <= 2, got
    # The same audio at the Realtime rate (24 kHz) gives the same words, but
    # for the misheard one, which varies with the resampler's rounding
    # ("old-sposed", "old-supposed") since the encoder reads a 15 s window.
    pcm24 = audio.resample(pcm, rate, 24000)
    at24 = words(
        "".join(whisper.transcribe(pcm24, 24000, language="en-US", prompt=None))
    )
    assert len(at24) == len(got)
    assert sum(a != b for a, b in zip(at24, got, strict=True)) <= 1, (at24, got)


def test_prompt_is_the_initial_prompt(whisper: WhisperTranscriber) -> None:
    """The prompt steers spelling: digits without it, words with a worded prompt."""
    pcm, rate = human_clip("cards/001.wav")
    plain = "".join(whisper.transcribe(pcm, rate, language=None, prompt=None))
    steered = "".join(
        whisper.transcribe(
            pcm,
            rate,
            language=None,
            prompt="ace of spades, ten of clubs, nine of hearts",
        )
    )
    assert plain != steered, plain
    assert "ten" in words(steered) and "clubs" in words(steered), steered


def test_language_is_honoured(whisper: WhisperTranscriber) -> None:
    """tiny.en transcribes English only; another language is refused at once."""
    with pytest.raises(UnsupportedLanguage, match="'fr'"):
        whisper.transcribe(b"\0\0" * 16000, 16000, language="fr", prompt=None)
    assert whisper.check_language("en-GB") == "en"
    assert whisper.check_language(None) == "en"


def test_silence_gives_no_words(whisper: WhisperTranscriber) -> None:
    """Digital silence is not decoded (Whisper would invent "Thank you.")."""
    assert (
        list(whisper.transcribe(b"\0\0" * 16000, 16000, language=None, prompt=None))
        == []
    )
    assert list(whisper.transcribe(b"", 16000, language=None, prompt=None)) == []


# --- Where the model comes from ------------------------------------------------------


def test_packaged_model_is_the_default_and_checked() -> None:
    packaged = packaged_model_dir()
    assert packaged is not None
    resolved = resolve_model(None)
    assert (resolved.kind, resolved.source, resolved.sha256) == (
        "packaged",
        str(packaged),
        PACKAGED_SHA256,
    )
    assert resolve_model("tiny.en") == resolved
    assert "packaged" in resolved.describe()


def test_a_tampered_packaged_model_is_refused(tmp_path: Path) -> None:
    """The SHA-256 check runs before loading (a copy with one byte changed)."""
    packaged = packaged_model_dir()
    assert packaged is not None
    copy = tmp_path / "model"
    copy.mkdir()
    for f in packaged.iterdir():
        (copy / f.name).symlink_to(f)
    (copy / "model.bin").unlink()
    data = bytearray((packaged / "model.bin").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.bin").write_bytes(bytes(data))
    code = (
        "import openrealtime.voice.whisper as w\n"
        f"w.packaged_model_dir = lambda: __import__('pathlib').Path({str(copy)!r})\n"
        "try:\n"
        "    w.WhisperTranscriber()\n"
        "except w.ModelError as e:\n"
        "    print('refused:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "refused:" in out.stdout and "expected " + PACKAGED_SHA256 in out.stdout, (
        out.stdout + out.stderr
    )


def test_a_local_directory_is_a_model(tmp_path: Path) -> None:
    """A directory holding a CTranslate2 model loads and transcribes."""
    packaged = packaged_model_dir()
    assert packaged is not None
    local = tmp_path / "my-whisper"
    local.mkdir()
    for f in packaged.iterdir():
        (local / f.name).symlink_to(f)
    resolved = resolve_model(str(local))
    assert (resolved.kind, resolved.sha256) == ("path", None)
    pcm, rate = human_clip("librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
    text = "".join(
        WhisperTranscriber(str(local), beam_size=1).transcribe(
            pcm, rate, language=None, prompt=None
        )
    )
    assert {"young", "man"} <= set(words(text)), text


def test_bad_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="no model.bin"):
        resolve_model(str(tmp_path))
    assert resolve_model("base.en").kind == "name"
    assert resolve_model("Systran/faster-whisper-small").kind == "name"


def test_a_name_resolves_through_faster_whispers_cache(tmp_path: Path) -> None:
    """A name other than the packaged one is faster-whisper's own lookup
    (download when connected); offline it finds the Hugging Face cache.

    The cache is laid out as huggingface_hub writes it, holding the packaged
    files under the name ``base.en``; the lookup runs in a fresh process
    because the offline switch is read when huggingface_hub is imported.
    """
    packaged = packaged_model_dir()
    assert packaged is not None
    repo = tmp_path / "hub" / "models--Systran--faster-whisper-base.en"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in packaged.iterdir():
        (snapshot / f.name).symlink_to(f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    code = (
        "from openrealtime.voice.whisper import WhisperTranscriber\n"
        "t = WhisperTranscriber({name!r})\n"
        "print(t.resolved.kind, t.resolved.source)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code.format(name="base.en")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.stdout.strip() == "name base.en", out.stdout + out.stderr
    # A name that is neither cached nor downloadable is a clear ModelError.
    out = subprocess.run(
        [sys.executable, "-c", code.format(name="small.en")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode != 0
    assert "ModelError: cannot load Whisper model small.en (name)" in out.stderr


def test_the_short_window_hears_what_the_full_window_hears(
    whisper: WhisperTranscriber,
) -> None:
    """The encoder reads 15 s, not Whisper's 30 s, when the audio fits with
    a second to spare: the same words as the full window on a short turn;
    longer audio gets the full window, so the same transcript."""
    full = WhisperTranscriber(window_s=30)
    pcm, rate = human_clip("librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
    gap = audio.silence(300, rate)

    def heard(t: WhisperTranscriber, pcm: bytes) -> list[str]:
        return words("".join(t.transcribe(pcm, rate, language=None, prompt=None)))

    short_words, full_words = heard(whisper, pcm), heard(full, pcm)
    assert short_words.count("dashwood") == 1
    assert len(set(short_words) ^ set(full_words)) <= 1, (short_words, full_words)
    # 16 s of three different sentences: more than 15 s. (One sentence three
    # times made Whisper fall back to sampling at random now and then, so the
    # two transcripts could differ by chance.)
    long = b"".join(
        human_clip(f"librivox/sense_and_sensibility_01_austen_64kb-{n}.wav")[0] + gap
        for n in ("0870", "0880", "0890")
    )
    assert heard(whisper, long) == heard(full, long)
