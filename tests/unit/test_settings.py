"""Unit tests for imagerec.core.settings: read once, sensible defaults, explicit wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagerec.core.errors import ConfigError
from imagerec.core.settings import Settings, default_threads

pytestmark = pytest.mark.unit


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({"HOME": "/home/x"})
    assert settings.model == "efficientnet_lite0"
    assert settings.runtime == "auto"
    assert (settings.max_bytes, settings.max_pixels) == (10_000_000, 40_000_000)
    assert settings.cache_dir == Path.home() / ".cache" / "imagerec"
    assert not settings.on_lambda


def test_environment_is_read() -> None:
    env = {
        "IMAGEREC_MODEL": "mobilenet_v2",
        "IMAGEREC_RUNTIME": "KERAS",
        "IMAGEREC_THREADS": "3",
        "IMAGEREC_MAX_BYTES": "1_000",
        "IMAGEREC_CACHE_DIR": "/opt/models",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
    }
    settings = Settings.from_env(env)
    assert (settings.model, settings.runtime, settings.threads) == ("mobilenet_v2", "keras", 3)
    assert settings.max_bytes == 1000
    assert settings.cache_dir == Path("/opt/models")
    assert settings.on_lambda


def test_explicit_arguments_win_over_the_environment() -> None:
    settings = Settings.from_env({"IMAGEREC_RUNTIME": "keras"}, runtime="litert", model=None)
    assert settings.runtime == "litert"
    assert settings.model == "efficientnet_lite0"


@pytest.mark.parametrize(
    "env",
    [{"IMAGEREC_RUNTIME": "onnx"}, {"IMAGEREC_THREADS": "many"}, {"IMAGEREC_MAX_BYTES": "0"}],
)
def test_bad_settings_fail_with_a_message(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="Expected"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("memory", "threads"), [("128", 1), ("1769", 1), ("2048", 1), ("3538", 2), ("10240", 5)]
)
def test_threads_follow_lambda_memory(memory: str, threads: int) -> None:
    assert default_threads({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory}) == threads


def test_threads_follow_the_cpu_affinity_off_lambda() -> None:
    import os

    assert default_threads({}) == len(os.sched_getaffinity(0))


def test_body_cap_leaves_room_for_base64() -> None:
    settings = Settings(max_bytes=3_000_000)
    assert settings.max_body_bytes >= 4_000_000


def test_upload_settings() -> None:
    # Given no environment / Then uploads are local, 20 MB, five minutes, no readable bucket
    default = Settings.from_env({"IMAGEREC_CACHE_DIR": "/c"})
    assert (default.max_upload_bytes, default.upload_expires_s) == (20_000_000, 300)
    assert (default.upload_bucket, default.readable_buckets) == (None, ())
    assert default.upload_dir == Path("/c/uploads")
    assert default.max_upload_body_bytes == 20_000_000 + 64 * 1024
    # Given the template's environment / Then each is read
    settings = Settings.from_env(
        {
            "IMAGEREC_MAX_UPLOAD_BYTES": "15_000_000",
            "IMAGEREC_UPLOAD_EXPIRES": "120",
            "IMAGEREC_UPLOAD_BUCKET": "imagerec-uploads-1",
            "IMAGEREC_READABLE_BUCKETS": "photos, archive.example ,",
            "IMAGEREC_S3_ENDPOINT_URL": "http://127.0.0.1:5000",
        }
    )
    assert (settings.max_upload_bytes, settings.upload_expires_s) == (15_000_000, 120)
    assert settings.upload_bucket == "imagerec-uploads-1"
    assert settings.readable_buckets == ("photos", "archive.example")
    assert settings.s3_endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    "env",
    [
        {"IMAGEREC_UPLOAD_BUCKET": "Not_A_Bucket"},
        {"IMAGEREC_UPLOAD_BUCKET": "a,b"},
        {"IMAGEREC_READABLE_BUCKETS": "ok,s3://nope"},
        {"IMAGEREC_MAX_UPLOAD_BYTES": "0"},
    ],
)
def test_bad_upload_settings_fail_with_a_message(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="Expected IMAGEREC_"):
        Settings.from_env(env)


def test_request_and_server_limits_have_defaults_and_read_the_environment() -> None:
    defaults = Settings.from_env({})
    assert (defaults.max_images, defaults.max_request_pixels) == (16, 100_000_000)
    assert defaults.max_decode_bytes == 320_000_000
    assert (defaults.idle_timeout, defaults.header_timeout, defaults.body_timeout) == (15, 10, 60)
    assert defaults.max_connections == 1000
    env = {
        "IMAGEREC_MAX_IMAGES": "4",
        "IMAGEREC_MAX_REQUEST_PIXELS": "1_000_000",
        "IMAGEREC_MAX_DECODE_BYTES": "50000000",
        "IMAGEREC_IDLE_TIMEOUT": "3",
        "IMAGEREC_HEADER_TIMEOUT": "2",
        "IMAGEREC_BODY_TIMEOUT": "9",
        "IMAGEREC_MAX_CONNECTIONS": "8",
    }
    settings = Settings.from_env(env)
    assert (settings.max_images, settings.max_request_pixels) == (4, 1_000_000)
    assert settings.max_decode_bytes == 50_000_000
    assert (settings.idle_timeout, settings.header_timeout, settings.body_timeout) == (3, 2, 9)
    assert settings.max_connections == 8
    with pytest.raises(ConfigError, match="IMAGEREC_MAX_IMAGES"):
        Settings.from_env({"IMAGEREC_MAX_IMAGES": "0"})


def test_the_summary_threshold_is_a_fraction() -> None:
    # Unset: each model's measured thresholds apply (docs/accuracy.md).
    assert Settings.from_env({}).summary_threshold is None
    assert Settings.from_env({"IMAGEREC_SUMMARY_THRESHOLD": "0.75"}).summary_threshold == 0.75
    for bad in ("0", "1.5", "-0.2", "nan", "most"):
        with pytest.raises(ConfigError, match="IMAGEREC_SUMMARY_THRESHOLD"):
            Settings.from_env({"IMAGEREC_SUMMARY_THRESHOLD": bad})
