"""The docs run as written: README.md and docs/*.md.

* Each shell block marked runnable (an HTML comment on the line before the
  fence, invisible on GitHub)::

      <!-- runnable -->
      <!-- runnable expect="text the output must contain" -->
      <!-- runnable status=1 expect="..." -->   (the exit status it must end with)

  runs with bash (``-e -o pipefail``) in a fresh copy of the repository whose
  ``.venv`` is this test's virtual environment. Port 8000 in the block becomes
  a free port, also given as ``OPENREALTIME_PORT`` (which ``serve`` and
  ``examples/talk_wav.py`` read), and whatever the block leaves running (a
  server started with ``&``) is stopped afterwards.
* Every shell block names the virtual environment's commands
  (``.venv/bin/python``, not ``python``; no macOS ``open``), so the ones that
  cannot run here (a server in the foreground, the hosted API) are right too.
* The ``bench`` and ``examples`` extras hold every package bench/ and the
  examples import.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest


ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(
    r'^<!-- runnable(?: status=(?P<status>\d+))?(?: expect="(?P<expect>[^"]*)")? -->$'
)
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\s*$")
SHELLS = {"bash", "sh", "shell", "console"}
#: Seconds one runnable block may take (a server start and a voice round trip).
BLOCK_TIMEOUT = 300
#: Commands a doc must not run bare: they are the virtual environment's.
BARE = {"python", "python3", "pip", "pip3", "openrealtime", "pytest", "ruff", "mypy"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str
    runnable: bool
    expect: str | None
    status: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with their runnable marker."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        start = i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = MARKER.match(lines[start - 1].strip()) if start else None
        found.append(
            Block(
                path,
                start + 1,
                fence["lang"],
                "\n".join(lines[start + 1 : end]) + "\n",
                marker is not None,
                marker["expect"] if marker else None,
                int(marker["status"] or 0) if marker else 0,
            )
        )
        i = end + 1
    return found


ALL = [b for path in DOCS for b in blocks(path)]
RUNNABLE = [b for b in ALL if b.runnable]
SHELL = [b for b in ALL if b.lang in SHELLS]


def commands(block: Block) -> list[list[str]]:
    """Each simple command of a shell block, as words (comments dropped)."""
    out: list[list[str]] = []
    text = block.text
    if block.lang == "console":  # only the prompted lines are commands
        text = "\n".join(
            line[2:] for line in text.splitlines() if line.startswith("$ ")
        )
    text = text.replace("\\\n", " ")
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in lexer:
            if token in {"&&", "||", ";", "|", "&"}:
                out.append(words)
                words = []
            else:
                words.append(token)
        out.append(words)
    return [c for c in out if c]


def test_markers_are_found() -> None:
    """The voice demo and the conformance recording are among the runnable blocks."""
    assert len(RUNNABLE) >= 2, [str(b) for b in RUNNABLE]
    assert all(b.lang == "bash" for b in RUNNABLE), [str(b) for b in RUNNABLE]
    assert any("examples/talk_wav.py" in b.text for b in RUNNABLE)


@pytest.mark.parametrize("block", SHELL, ids=str)
def test_shell_blocks_use_the_virtual_environment(block: Block) -> None:
    for words in commands(block):
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]  # VAR=value command
        if not words:
            continue
        command = words[0]
        if words[:3] == ["python3", "-m", "venv"]:
            continue  # what makes the virtual environment
        assert command not in BARE, f"{block}: use .venv/bin/{command}: {words}"
        assert command not in {"open", "xdg-open"}, f"{block}: not on every OS"
        if command.startswith(".venv/bin/"):
            assert (Path(sys.prefix) / "bin" / command[len(".venv/bin/") :]).exists()


def _fresh_copy(target: Path) -> None:
    """The repository's files as a clone has them (no build outputs, no venv)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            source = ROOT / name
            if source.is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
    else:  # pragma: no cover - a source tree without git
        shutil.copytree(
            ROOT,
            target,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info"),
        )
    (target / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=str)
def test_runnable_block(block: Block, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    _fresh_copy(clone)
    port = _free_port()
    script = re.sub(r"(?<=:)8000\b", str(port), block.text)
    env = {**os.environ, "OPENREALTIME_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "output.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped below
        )
        try:
            code = process.wait(timeout=BLOCK_TIMEOUT)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    output = log.read_text(errors="replace")
    assert code == block.status, f"{block} exited {code}:\n{script}\n{output}"
    if block.expect is not None:
        assert block.expect in output, f"{block}: no {block.expect!r} in:\n{output}"


# --- Extras ------------------------------------------------------------------------


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _declared(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in extras:
        names |= {_name(r) for r in project["optional-dependencies"][extra]}
    return names


def _imports(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def _undeclared(modules: set[str], local: set[str], *extras: str) -> list[str]:
    declared = _declared(*extras)
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(modules - local - set(sys.stdlib_module_names)):
        names = {_name(d) for d in distributions.get(module, [module])}
        if not names & declared:
            missing.append(module)
    return missing


def _test_modules(source: str) -> set[Path]:
    """The files of the ``tests.*`` modules a source imports (bench borrows some)."""
    files = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "tests."
        ):
            files.add(ROOT / (str(node.module).replace(".", "/") + ".py"))
    return files


def test_bench_extra_holds_what_bench_imports() -> None:
    files = list((ROOT / "bench").rglob("*.py"))
    borrowed = set().union(*(_test_modules(f.read_text()) for f in files))
    assert borrowed, "bench borrows tests.server.conftest's running_server"
    modules = set().union(*(_imports(f.read_text()) for f in [*files, *borrowed]))
    local = {"openrealtime", "tests", "bench", *(f.stem for f in files)}
    assert _undeclared(modules, local, "bench") == []


def test_examples_extra_holds_what_the_examples_import() -> None:
    sources = [f.read_text() for f in (ROOT / "examples").glob("*.py")]
    sources += [b.text for b in ALL if b.lang == "python"]
    modules = set().union(*(_imports(s) for s in sources))
    assert {"openai"} <= modules
    assert _undeclared(modules, {"openrealtime"}, "examples") == []
    # The README's openai-agents example is prose: its package is there too.
    assert "openai-agents" in _declared("examples")
