"""The voice pipeline: choices, resolution, and the flags of `serve`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openrealtime.cli import build_parser, build_settings, main
from openrealtime.responders.echo import EchoResponder
from openrealtime.responders.scripted import ScriptedResponder
from openrealtime.server.pipeline import Pipeline, PipelineError, from_env
from openrealtime.server.settings import ConfigurationError, Settings


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_library_default_is_plain() -> None:
    """Settings() runs no voice engines: energy VAD, no speech, no transcription."""
    settings = Settings()
    assert settings.pipeline is None
    assert settings.scorer_factory is None and settings.transcriber is None
    assert isinstance(settings.responder(), EchoResponder)


def test_explicit_engines() -> None:
    """Named engines are made as asked."""
    settings = Settings(
        pipeline=Pipeline(vad="webrtc", speech="none", transcription="pocketsphinx")
    )
    assert settings.scorer_factory is not None
    assert type(settings.scorer_factory(24000)).__name__ == "WebRtcScorer"
    router = settings.transcriber
    assert type(router).__name__ == "TranscriberRouter"
    assert type(router.primary).__name__ == "PocketSphinxTranscriber"  # type: ignore[union-attr]
    assert isinstance(settings.responder(), EchoResponder)


def test_auto_resolves_to_installed_engines() -> None:
    """auto picks Silero, Whisper (the whisper extra) and flite (scripts/apt-packages.txt)."""
    pipe = Pipeline(vad="auto", speech="auto", transcription="auto")
    assert pipe.vad_name() == "silero"
    assert pipe.transcription_name() == "whisper"
    assert pipe.speech_name() == "flite"
    assert "vad=silero" in pipe.describe()
    assert "transcription=whisper tiny.en (packaged" in pipe.describe()


def test_scripted_needs_fixtures(tmp_path: object) -> None:
    """--responder scripted without --fixtures is a configuration error."""
    with pytest.raises(PipelineError, match="fixture file"):
        Pipeline(responder="scripted")
    with pytest.raises(ConfigurationError, match="fixture file"):
        build_settings(args("--responder", "scripted"), environ={})


def test_chat_needs_url_and_model() -> None:
    """--responder chat needs its endpoint."""
    with pytest.raises(PipelineError, match="--llm-base-url"):
        Pipeline(responder="chat", llm_model="m")
    pipe = Pipeline(
        responder="chat", llm_base_url="http://127.0.0.1:1/v1", llm_model="m"
    )
    assert type(pipe.responder_factory()()).__name__ == "ChatResponder"
    assert "chat (m at http://127.0.0.1:1/v1)" in pipe.describe()


def test_bad_choice() -> None:
    """An unknown engine name is refused with the choices."""
    with pytest.raises(PipelineError, match="vad must be one of"):
        Pipeline(vad="magic")


def test_flags_and_env(tmp_path: object) -> None:
    """Flags land in the pipeline; env vars fill what flags leave to auto."""
    from pathlib import Path

    fixture = Path(str(tmp_path)) / "f.yaml"
    fixture.write_text("default: {text: hi}\n")
    settings = build_settings(
        args("--responder", "scripted", "--fixtures", str(fixture), "--speech", "none"),
        environ={"OPENREALTIME_VAD": "energy"},
    )
    assert settings.pipeline == Pipeline(
        vad="energy",
        speech="none",
        transcription="auto",
        responder="scripted",
        fixtures=str(fixture),
    )
    assert isinstance(settings.responder(), ScriptedResponder)
    # The engine's energy scores, computed with numpy (voice workers' CPU).
    from openrealtime.voice import vad

    assert settings.scorer_factory is vad.engine_energy_scorer


def test_env_only() -> None:
    """Settings.from_env builds a pipeline from OPENREALTIME_* variables."""
    settings = Settings.from_env(
        {"OPENREALTIME_SPEECH": "none", "OPENREALTIME_VAD": "energy"}
    )
    assert settings.pipeline == Pipeline(speech="none", vad="energy")
    assert from_env({}) == Pipeline()
    with pytest.raises(ConfigurationError):
        Settings.from_env({"OPENREALTIME_RESPONDER": "nope"})


def test_settings_env_carries_flags_to_workers() -> None:
    """Worker processes get the pipeline flags as variables."""
    from openrealtime.cli import settings_env

    env = settings_env(args("--vad", "webrtc", "--llm-model", "m"))
    assert env["OPENREALTIME_VAD"] == "webrtc"
    assert env["OPENREALTIME_LLM_MODEL"] == "m"
    assert env["OPENREALTIME_SPEECH"] == "auto"


def test_workers_keep_the_operators_variables() -> None:
    """A variable set without a flag reaches workers as set, not as auto."""
    from openrealtime.server import pipeline

    env = pipeline.settings_env(args(), {"OPENREALTIME_VAD": "energy"})
    assert env["OPENREALTIME_VAD"] == "energy"
    assert env["OPENREALTIME_SPEECH"] == "auto"
    assert pipeline.settings_overrides(args(), {"OPENREALTIME_VAD": "energy"}) == {
        "pipeline": Pipeline(vad="energy", speech="auto", transcription="auto")
    }


# --- Start-up mistakes: one line and exit 2 --------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read fixture file {path}: No such file or directory"),
        (
            'rules:\n  - match: {txt: "x"}\n    reply: {text: "y"}\n',
            "invalid fixture file {path}: Object contains unknown field `txt` - at "
            "`$.rules[0].match`",
        ),
        ("rules: [\n", "invalid fixture file {path}: while parsing a flow node"),
        (
            'rules:\n  - match: {regex: "("}\n    reply: {text: y}\n',
            "invalid fixture file {path}: missing ), unterminated subpattern",
        ),
    ],
)
def test_fixture_mistakes_are_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    message: str,
) -> None:
    path = tmp_path / "fixture.yaml"
    if content is not None:
        path.write_text(content)
    argv = ["serve", "--port", "0", "--responder", "scripted", "--fixtures", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("openrealtime: error: " + message.format(path=path)), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_fixtures_without_scripted_responder_warns() -> None:
    (warning,) = Pipeline(fixtures="weather.yaml", speech="none").warnings()
    assert warning == (
        "--fixtures weather.yaml is ignored: fixtures are for --responder "
        "scripted, and the responder is echo"
    )
    assert (
        Pipeline(
            responder="scripted", fixtures="weather.yaml", speech="none"
        ).warnings()
        == []
    )


def test_missing_espeak_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto without espeak-ng: speech=none, with why and how to install it."""
    monkeypatch.setenv("PATH", "/nonexistent")
    pipeline = Pipeline(speech="auto")
    assert pipeline.speech_name() == "none"
    (warning,) = pipeline.warnings()
    assert warning.startswith(
        "speech=none because neither flite nor espeak-ng is installed"
    )
    assert "440 Hz tone" in warning and "apt-get install espeak-ng" in warning
    assert "apt-get install flite" in warning
    assert Pipeline(speech="none").warnings() == []  # chosen: nothing to say


def test_explicit_espeak_without_binary_exits_2(tmp_path: Path) -> None:
    """--speech espeak without espeak-ng fails at start-up with exit status 2."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [sys.executable, "-m", "openrealtime", "serve", "--port", "0"]
        + ["--speech", "espeak"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "openrealtime: error: --speech espeak: the espeak-ng program is not "
        "installed; install it with 'sudo apt-get install espeak-ng' (Debian, "
        "Ubuntu) or 'brew install espeak-ng' (macOS)\n"
    )


# --- Issue 16: Whisper, flite, remote engines, and engines that are missing ------------


def serve_exit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run `openrealtime serve ARGV` where it must refuse to start."""
    from openrealtime.cli import main

    code = main(["serve", "--port", "0", *argv])
    return code, capsys.readouterr().err


def test_missing_engines_asked_for_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An engine named explicitly that cannot run: a clear message, status 2."""
    code, err = serve_exit(capsys, "--transcription", "remote")
    assert code == 2 and "--transcription remote needs --transcription-url" in err
    code, err = serve_exit(capsys, "--speech", "remote")
    assert code == 2 and "--speech remote needs --speech-url" in err
    code, err = serve_exit(capsys, "--transcription-model", f"{tmp_path}/no-model")
    assert code == 2 and "does not exist" in err
    code, err = serve_exit(capsys, "--transcription-model", str(tmp_path))
    assert code == 2 and "no model.bin" in err
    # A PATH without flite (an empty directory) is a machine without flite.
    monkeypatch.setenv("PATH", str(tmp_path))
    code, err = serve_exit(capsys, "--speech", "flite")
    assert code == 2
    assert "speech engine 'flite' needs the flite program" in err
    assert "apt-get install flite" in err
    code, err = serve_exit(capsys, "--speech", "espeak")
    assert code == 2 and "apt-get install espeak-ng" in err


def test_missing_python_engines_asked_for_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the whisper extra, --transcription whisper says how to get it;
    auto falls back to PocketSphinx."""
    from openrealtime.server import pipeline

    installed = pipeline._installed
    monkeypatch.setattr(
        pipeline, "_installed", lambda m: m != "faster_whisper" and installed(m)
    )
    code, err = serve_exit(capsys, "--transcription", "whisper")
    assert code == 2
    assert "'whisper' is not installed: pip install 'openrealtime[whisper]'" in err
    assert Pipeline(transcription="auto").transcription_name() == "pocketsphinx"
    monkeypatch.setattr(pipeline, "_installed", lambda m: False)
    code, err = serve_exit(capsys, "--transcription", "pocketsphinx")
    assert code == 2 and "'pocketsphinx' is not installed" in err
    assert Pipeline(transcription="auto").transcription_name() == "none"


def test_piper_missing_or_misconfigured_exits_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--speech piper: a voice model that is not there, or no piper at all,
    is one clear line and status 2; auto never picks piper."""
    from openrealtime.voice import piper

    code, err = serve_exit(
        capsys, "--speech", "piper", "--speech-model", f"{tmp_path}/none.onnx"
    )
    assert code == 2 and "--speech piper: piper voice model" in err
    assert "does not exist" in err
    monkeypatch.setattr(piper, "available", lambda: False)
    code, err = serve_exit(capsys, "--speech", "piper")
    assert code == 2
    assert "'piper' is not installed: pip install 'openrealtime[piper]'" in err
    assert Pipeline(speech="auto").speech_name() != "piper"


def test_an_unloadable_model_name_is_a_configuration_error() -> None:
    """A name that is neither packaged, cached nor downloadable (no such
    model anywhere; offline, nothing can be downloaded either)."""
    from openrealtime.cli import build_settings

    with pytest.raises(ConfigurationError, match="cannot load Whisper model"):
        build_settings(
            args("--transcription-model", "no-such-whisper-model"), environ={}
        )


def test_auto_prefers_urls_then_flite_over_espeak(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from pathlib import Path

    pipe = Pipeline(
        transcription="auto",
        speech="auto",
        transcription_url="http://127.0.0.1:1/v1",
        speech_url="http://127.0.0.1:1/v1",
    )
    assert (pipe.transcription_name(), pipe.speech_name()) == ("remote", "remote")
    assert "transcription=remote (http://127.0.0.1:1/v1)" in pipe.describe()
    assert "speech=remote (http://127.0.0.1:1/v1)" in pipe.describe()
    router = pipe.transcriber()
    assert router.engine_name("gpt-4o-transcribe") == "remote"
    # The remote engine sends the session's model name on.
    assert (
        router.for_model("gpt-4o-mini-transcribe")._session_model
        == "gpt-4o-mini-transcribe"
    )
    bin_dir = Path(str(tmp_path))
    espeak = shutil.which("espeak-ng")
    assert espeak is not None
    (bin_dir / "espeak-ng").symlink_to(espeak)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert Pipeline(speech="auto").speech_name() == "espeak"


def test_new_flags_reach_workers_and_settings() -> None:
    from openrealtime.cli import settings_env

    argv = (
        "--transcription-url",
        "http://gpu:8000/v1",
        "--speech-url",
        "http://gpu:8000/v1",
        "--speech-model",
        "kokoro",
        "--transcription-model",
        "Systran/faster-whisper-small",
        "--audio-api-key",
        "k",
    )
    env = settings_env(args(*argv))
    assert env["OPENREALTIME_TRANSCRIPTION_URL"] == "http://gpu:8000/v1"
    assert env["OPENREALTIME_SPEECH_URL"] == "http://gpu:8000/v1"
    assert env["OPENREALTIME_SPEECH_MODEL"] == "kokoro"
    assert env["OPENREALTIME_TRANSCRIPTION_MODEL"] == "Systran/faster-whisper-small"
    assert env["OPENREALTIME_AUDIO_API_KEY"] == "k"
    settings = Settings.from_env(env)
    assert settings.pipeline is not None
    assert settings.pipeline.transcription_name() == "remote"
    assert type(settings.synthesizer).__name__ == "RemoteSynthesizer"
    assert settings.synthesizer.model == "kokoro"  # type: ignore[union-attr]
