"""Which engine serves a session's ``audio.input.transcription.model``.

A server has one *primary* recognizer (``--transcription``: ``whisper``,
``pocketsphinx`` or ``remote``). :class:`TranscriberRouter` stands in front
of it and picks, per utterance, the engine for the model name the client
set:

* a hosted name (``whisper-1``, ``gpt-4o-transcribe``,
  ``gpt-4o-mini-transcribe``, ... see
  :data:`~openrealtime.voice.transcribe.TRANSCRIPTION_ENGINES`) is served by
  the primary: the operator's choice of engine wins over the hosted name;
* an engine's own name (``whisper``, ``pocketsphinx``) picks that engine if
  it is installed; it is loaded on first use, once, and kept;
* any other name goes to the primary.

A remote primary (``--transcription-url``) receives the client's model name
as its ``model`` field unless ``--transcription-model`` fixes one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

from openrealtime.voice.asr import Transcriber


__all__ = ["TranscriberRouter"]


class TranscriberRouter:
    """The primary recognizer, plus the others a session may name.

    Args:
        primary: The engine serving everything not routed elsewhere.
        primary_name: Its engine name (``whisper``, ``pocketsphinx``, ``remote``).
        others: Factories of the other installed engines, by engine name;
            each runs at most once, on first use.
    """

    def __init__(
        self,
        primary: Transcriber,
        primary_name: str,
        others: Mapping[str, Callable[[], Transcriber]] | None = None,
    ) -> None:
        self.primary = primary
        self.primary_name = primary_name
        self._factories = dict(others or {})
        self._engines: dict[str, Transcriber] = {primary_name: primary}
        self._lock = threading.Lock()

    @property
    def engine_names(self) -> tuple[str, ...]:
        """The engines a session can name (the primary first)."""
        return (self.primary_name, *sorted(set(self._factories) - {self.primary_name}))

    def engine_name(self, model: str | None) -> str:
        """The engine that serves ``model`` (not loading it)."""
        if model is None:
            return self.primary_name
        if model == self.primary_name or model in self._factories:
            return model
        return self.primary_name

    def for_model(self, model: str | None) -> Transcriber:
        """The recognizer for a session's ``transcription.model``.

        Loading a secondary engine happens here, at most once (call it off
        the event loop: it may take a second).
        """
        name = self.engine_name(model)
        engine = self._engines.get(name)
        if engine is None:
            with self._lock:
                engine = self._engines.get(name)
                if engine is None:
                    engine = self._factories[name]()
                    self._engines[name] = engine
        # A pass-through engine (remote) sends the client's name on.
        select = getattr(engine, "for_model", None)
        if select is not None:
            chosen: Transcriber = select(model)
            return chosen
        return engine

    def transcribe(
        self, pcm16: bytes, rate: int, *, language: str | None, prompt: str | None
    ) -> Iterator[str]:
        """Transcribe with the primary engine."""
        return self.primary.transcribe(pcm16, rate, language=language, prompt=prompt)
