"""The first ten minutes, as a terminal sees them: every failure is one line, nothing else leaks.

Each case runs the real `imagerec` (or make) in a subprocess and reads its stdout and stderr.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from tests.serving import served

pytestmark = pytest.mark.integration

IMAGEREC = [sys.executable, "-m", "imagerec"]
SAMPLES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "samples").glob("*.jpg"))


def run(
    *args: str, env: dict[str, str | None] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run from the repository root; an env value of None removes that variable."""
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        list(args),
        cwd=ROOT,
        env={key: value for key, value in merged.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def bash(script: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    return run("bash", "-c", f"set -o pipefail; {script}", env=env)


def test_samples_are_small_photos_the_docs_can_use() -> None:
    assert len(SAMPLES) >= 4
    for sample in SAMPLES:
        assert (ROOT / sample).stat().st_size < 200_000, sample
    licences = (ROOT / "samples" / "README.md").read_text(encoding="utf-8")
    assert all(f"`{Path(s).name}`" in licences for s in SAMPLES)


def test_classify_prints_nothing_but_its_lines() -> None:
    # Given the default model / When a photo is classified / Then no LiteRT or TensorFlow chatter
    done = run(*IMAGEREC, "classify", "samples/coffee.jpg")
    assert done.returncode == 0
    assert done.stdout == "samples/coffee.jpg: espresso (94.0%)\n"
    assert done.stderr == ""


def test_verbose_brings_litert_s_own_line_back() -> None:
    done = run(*IMAGEREC, "--verbose", "classify", "samples/coffee.jpg")
    assert done.returncode == 0
    assert "XNNPACK" in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        f"{sys.executable} -m imagerec classify {' '.join(SAMPLES)} | head -1",
        f"{sys.executable} -m imagerec models --json | head -c 40",
    ],
)
def test_a_closed_pipe_ends_quietly(command: str) -> None:
    # Given a reader that stops early / When it closes the pipe / Then no traceback, no noise
    done = bash(command)
    assert done.stdout
    assert done.stderr == ""
    # pipefail: imagerec reports SIGPIPE's status, as `yes | head -1` does
    assert done.returncode in (0, 128 + signal.SIGPIPE)


def test_a_port_in_use_is_one_line_with_the_way_out() -> None:
    # Given a port something already listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When imagerec serve is started on it
        done = run(*IMAGEREC, "serve", "--port", str(port))
    # Then one line says so and how to choose another port; nothing claims to be serving
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"imagerec: error: Port {port} on 127.0.0.1 is already in use")
    assert "make run PORT=9000" in line


def test_serve_without_a_built_model_is_one_line_before_listening(tmp_path: Path) -> None:
    done = run(
        *IMAGEREC, "serve", "--port", str(free_port()), env={"IMAGEREC_CACHE_DIR": str(tmp_path)}
    )
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("imagerec: error: The model efficientnet_lite0 is not built in ")
    assert "`imagerec build-model efficientnet_lite0`" in line


def test_serve_says_it_started_two_workers_and_what_to_paste(tmp_path: Path) -> None:
    with served(tmp_path / "serve.log", "--workers", "2", healthy=False) as server:
        deadline = time.monotonic() + 60
        while len(server.output().splitlines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        first, second = server.output().splitlines()[:2]
    assert first == (f"imagerec: serving {server.base_url}/ with 2 worker processes (Ctrl-C stops)")
    assert second == (
        "imagerec: try  curl -s -H 'Accept: text/plain' --data-binary @samples/coffee.jpg "
        f"{server.base_url}/api/classify"
    )


@pytest.mark.slow
def test_an_offline_build_of_a_download_only_model_is_one_line(tmp_path: Path) -> None:
    # Given no way out to the network (a proxy that refuses) and no cached Keras weights
    offline: dict[str, str | None] = {
        "HTTPS_PROXY": f"http://127.0.0.1:{free_port()}",
        "https_proxy": f"http://127.0.0.1:{free_port()}",
        "KERAS_HOME": str(tmp_path / "keras"),
        "IMAGEREC_CACHE_DIR": str(tmp_path / "cache"),
        "TF_CPP_MIN_LOG_LEVEL": None,  # as a plain shell has it, not as make exports it
    }
    # When a model that downloads its weights is built
    done = run(*IMAGEREC, "build-model", "mobilenet_v2", env=offline, timeout=300)
    # Then its progress line and one error line, no traceback, no TensorFlow start-up logs
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "imagerec: building mobilenet_v2…"
    assert lines[1].startswith(
        "imagerec: error: Cannot download the ImageNet weights of keras.applications.MobileNetV2"
    )
    assert len(lines) == 2, done.stderr


def test_classify_never_builds_it_says_how() -> None:
    done = run(*IMAGEREC, "classify", "--model", "mobilenet_v2", "samples/coffee.jpg")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.endswith("build it with `imagerec build-model mobilenet_v2`.")


def test_make_help_shows_the_real_address() -> None:
    done = run("make", "--no-print-directory", "help", "PORT=9000")
    assert done.returncode == 0
    assert "http://127.0.0.1:9000/" in done.stdout
    assert "$(" not in done.stdout
