"""The docs run as written: README.md and docs/*.md, every runnable block, against a real server.

How to write runnable docs (README.md and docs/*.md follow this; new docs should too):

- A block fenced ```` ```bash ```` is run by this test, from the repository root, in one bash
  process per document, so a variable set in one block (``BASE=...``) holds in the next.
  ```` ```bash no-test ```` marks a block that cannot run here: deploys, AWS, Docker,
  credentials, the network, commands that never return (``make run``) or that this test is
  part of (``make test``). GitHub highlights both as bash.
- A block fenced ```` ```python ```` is run with the test's Python (``python no-test`` skips it).
- Output, where the docs show it, is checked:
  - a transcript: a line ``$ command`` is a command; the lines after it, up to the next ``$``,
    are what it prints (stdout and stderr together), line for line;
  - or a comment ``# → text`` at the end of a command: its first line of output reads ``text``
    (in Python, each ``# →`` is the next line the block prints);
  - or a ```` ```json ```` block right after a bash block: what that block's last command
    printed, as JSON: the same keys and strings, numbers as rounded in the doc, and any
    number under ``timing_ms`` (timings vary);
  - in lines, ``…`` stands for any text.
- Every command must exit 0, unless the next command is ``echo $?``, which shows the status.
- ``127.0.0.1:8080`` in a command is a real ``imagerec serve`` that this test starts on a
  free port.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.serving import served

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOC_PORT = "127.0.0.1:8080"
ARROW = "# → "
FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")
RUN_TIMEOUT_S = 600


# ---- reading the docs -------------------------------------------------------------------


@dataclass
class Command:
    text: str
    line: int  # in the document, for messages
    expected: list[str] | None = None  # whole output (a transcript)
    first_line: str | None = None  # first line of output (# →)
    expected_json: Any = None  # a ```json block after the block this command ends


@dataclass
class Block:
    language: str
    line: int
    body: list[str]
    commands: list[Command] = field(default_factory=list)


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block with its language; ```bash no-test blocks are left out."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        language, extra = opening.groups()
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        if "no-test" not in extra.split():
            blocks.append(Block(language, start + 1, body))
    return blocks


def _join_continuations(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in lines:
        if pending is not None:
            number, text = pending[0], pending[1] + "\n" + text
        if text.endswith("\\"):
            pending = (number, text)
            continue
        pending = None
        joined.append((number, text))
    return joined


def _split_arrow(text: str) -> tuple[str, str | None]:
    if ARROW in text:
        command, expected = text.rsplit(ARROW, 1)
        return command.rstrip(), expected.strip()
    return text, None


def bash_commands(block: Block) -> list[Command]:
    numbered = [(block.line + 1 + i, line) for i, line in enumerate(block.body)]
    if any(line.startswith("$ ") for _, line in numbered):
        return _transcript(numbered)
    commands = []
    for number, text in _join_continuations(numbered):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        command, first_line = _split_arrow(text)
        commands.append(Command(command, number, first_line=first_line))
    return commands


def _transcript(numbered: list[tuple[int, str]]) -> list[Command]:
    commands: list[Command] = []
    index = 0
    while index < len(numbered):
        number, text = numbered[index]
        index += 1
        if not text.startswith("$ "):
            continue
        text = text[2:]
        while text.endswith("\\") and index < len(numbered):
            text += "\n" + numbered[index][1]
            index += 1
        output: list[str] = []
        while index < len(numbered) and not numbered[index][1].startswith("$ "):
            output.append(numbered[index][1])
            index += 1
        while output and not output[-1].strip():
            output.pop()
        commands.append(Command(text, number, expected=output))
    return commands


def document_commands(path: Path) -> tuple[list[Command], list[Block]]:
    """The bash commands of a document in order, and its Python blocks."""
    commands: list[Command] = []
    python: list[Block] = []
    blocks = fenced_blocks(path)
    text_lines = path.read_text(encoding="utf-8").splitlines()
    for position, block in enumerate(blocks):
        if block.language == "bash":
            block.commands = bash_commands(block)
            commands.extend(block.commands)
            following = blocks[position + 1] if position + 1 < len(blocks) else None
            if following and following.language == "json" and block.commands:
                # Only blank lines between the two fences: the JSON is this block's output.
                end = block.line + len(block.body) + 1
                between = text_lines[end : following.line - 1]
                if not any(line.strip() for line in between):
                    block.commands[-1].expected_json = json.loads("\n".join(following.body))
        elif block.language == "python":
            python.append(block)
    return commands, python


# ---- comparing ---------------------------------------------------------------------------


def line_matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.rstrip().split("…"))
    return re.fullmatch(pattern, actual.rstrip(), flags=re.DOTALL) is not None


def lines_match(expected: list[str], actual: list[str]) -> bool:
    if len(expected) != len(actual):
        return False
    return all(line_matches(e, a) for e, a in zip(expected, actual, strict=True))


def _decimals(number: float) -> int:
    text = repr(number)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def json_differences(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """How ``actual`` departs from the doc's JSON ``expected`` (empty: it matches)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, received {actual!r}"]
        problems = []
        if set(expected) != set(actual):
            problems.append(f"{where}: keys {sorted(expected)} != {sorted(actual)}")
        for key in expected.keys() & actual.keys():
            if key == "timing_ms":
                if not all(isinstance(v, int | float) for v in actual[key].values()):
                    problems.append(f"{where}.timing_ms: not all numbers: {actual[key]}")
                continue
            problems += json_differences(expected[key], actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, received {actual!r}"]
        problems = []
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problems += json_differences(e, a, f"{where}[{index}]")
        return problems
    if isinstance(expected, float) and isinstance(actual, int | float):
        if round(actual, _decimals(expected)) != expected:
            return [f"{where}: {actual} does not round to {expected}"]
        return []
    if expected != actual:
        return [f"{where}: expected {expected!r}, received {actual!r}"]
    return []


# ---- the convention itself, on small examples (fast) -------------------------------------


def test_blocks_are_read_as_the_convention_says(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```bash\nA=1\ncurl -s x \\\n  -d y   # → ok…\n```\n\n"
        "```bash no-test\nmake deploy\n```\n"
        "```bash\n$ echo hi\nhi\n$ false\n$ echo $?\n1\n```\n"
        '```json\n{"a": 0.95, "timing_ms": {"total": 1.0}}\n```\n'
        "```python\nprint(1)  # → 1\n```\n",
        encoding="utf-8",
    )
    commands, python = document_commands(doc)
    assert [c.text for c in commands] == [
        "A=1",
        "curl -s x \\\n  -d y",
        "echo hi",
        "false",
        "echo $?",
    ]
    assert commands[1].first_line == "ok…"
    assert commands[2].expected == ["hi"]
    assert commands[4].expected == ["1"]
    assert commands[4].expected_json == {"a": 0.95, "timing_ms": {"total": 1.0}}
    assert len(python) == 1
    assert line_matches("ok…", "ok then more")
    assert not line_matches("ok", "ok then more")
    assert (
        json_differences({"a": 0.95, "timing_ms": {}}, {"a": 0.9512, "timing_ms": {"x": 3}}) == []
    )
    assert json_differences({"a": 0.95}, {"a": 0.96})


# ---- running them --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `imagerec serve` on a free loopback port, standing in for 127.0.0.1:8080."""
    with served(tmp_path_factory.mktemp("docs-server") / "serve.log") as server:
        yield f"127.0.0.1:{server.port}"


@dataclass
class Outcome:
    output: str
    status: int


def run_bash(commands: list[Command], address: str, workdir: Path) -> list[Outcome]:
    """Run the commands in one bash, in order; keep each one's output and exit status."""
    script = [f"cd {shlex.quote(str(ROOT))}"]
    for number, command in enumerate(commands):
        out = shlex.quote(str(workdir / f"{number}.out"))
        status = shlex.quote(str(workdir / f"{number}.status"))
        text = command.text.replace(DOC_PORT, address)
        # `{ ...; }` runs in this shell, so variables carry over; `(exit $s)` keeps $? for a
        # following `echo $?`.
        script.append(f"{{ {text}\n}} >{out} 2>&1 </dev/null; s=$?; echo $s >{status}; (exit $s)")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(["bash", "-c", "\n".join(script)], env=env, timeout=RUN_TIMEOUT_S, check=False)
    outcomes = []
    for number in range(len(commands)):
        status_file = workdir / f"{number}.status"
        status = int(status_file.read_text()) if status_file.exists() else -1
        output = (workdir / f"{number}.out").read_text(errors="replace")
        outcomes.append(Outcome(output, status))
    return outcomes


def _problems(commands: list[Command], outcomes: list[Outcome], doc: str) -> list[str]:
    problems = []
    for index, (command, outcome) in enumerate(zip(commands, outcomes, strict=True)):
        where = f"{doc}:{command.line}: {command.text!r}"
        checks_status = index + 1 < len(commands) and commands[index + 1].text == "echo $?"
        if outcome.status != 0 and not checks_status:
            problems.append(f"{where} exited {outcome.status}:\n{outcome.output[-1500:]}")
            continue
        lines = outcome.output.splitlines()
        if command.expected is not None and not lines_match(command.expected, lines):
            shown = "\n".join(command.expected)
            problems.append(f"{where} printed:\n{outcome.output}\nthe doc shows:\n{shown}")
        if command.first_line is not None and not (
            lines and line_matches(command.first_line, lines[0])
        ):
            problems.append(
                f"{where} printed:\n{outcome.output}\nthe doc shows: {command.first_line}"
            )
        if command.expected_json is not None:
            try:
                actual = json.loads(outcome.output)
            except ValueError:
                problems.append(f"{where} printed no JSON:\n{outcome.output[-1500:]}")
                continue
            for difference in json_differences(command.expected_json, actual):
                problems.append(f"{where}: the JSON after it differs: {difference}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_bash_block_runs_as_written(doc: Path, server_address: str, tmp_path: Path) -> None:
    # Given a document's runnable bash blocks, When they run in order against a real server
    commands, _ = document_commands(doc)
    if not commands:
        pytest.skip(f"{doc.name} has no runnable bash block")
    outcomes = run_bash(commands, server_address, tmp_path)
    # Then each exits 0 (or shows its status) and prints what the doc shows
    problems = _problems(commands, outcomes, doc.relative_to(ROOT).as_posix())
    assert not problems, "\n\n".join(problems)


def _python_blocks() -> list[tuple[str, Block]]:
    return [
        (f"{doc.name}:{block.line}", block) for doc in DOCS for block in document_commands(doc)[1]
    ]


@pytest.mark.parametrize(
    ("where", "block"), _python_blocks(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_python_block_runs_as_written(where: str, block: Block) -> None:
    # Given a Python block, When it runs from the repository root
    source = "\n".join(block.body)
    result = subprocess.run(
        [sys.executable, "-c", source],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    # Then it succeeds and each `# →` is the next line it prints
    assert result.returncode == 0, f"{where} failed:\n{result.stderr[-2000:]}"
    expected = [_split_arrow(line)[1] for line in block.body if ARROW in line]
    printed = result.stdout.splitlines()
    assert lines_match([e for e in expected if e is not None], printed), (
        f"{where} printed:\n{result.stdout}\nthe doc shows:\n{expected}"
    )
