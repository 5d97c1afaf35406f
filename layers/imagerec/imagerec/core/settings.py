"""Settings, read once from the environment, with defaults that need no configuration.

This is the only module that reads ``os.environ``. An explicit argument always wins over the
environment (``Settings.from_env(**overrides)``); a bad value raises ``ConfigError``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

from imagerec.core.errors import ConfigError

RuntimeName = Literal["auto", "litert", "keras"]
RUNTIMES: tuple[str, ...] = get_args(RuntimeName)
# Who may call what (the template's Auth parameter): none, a public demo where nobody may name
# an S3 object; iam or jwt, where the API Gateway authorizer vouches for callers of the
# authorized routes, and only they may.
AuthMode = Literal["none", "iam", "jwt"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)

DEFAULT_MODEL = "efficientnet_lite0"
# Lambda allocates one vCPU-equivalent per 1,769 MB of memory.
LAMBDA_MB_PER_VCPU = 1769


def default_cache_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "imagerec"


def default_threads(env: Mapping[str, str]) -> int:
    """The CPUs this process really has: on Lambda from its memory size, else the affinity mask."""
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if memory and memory.isdigit():
        return max(1, math.floor(int(memory) / LAMBDA_MB_PER_VCPU))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ConfigError(f"Expected {name} to be an integer, received: {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"Expected {name} >= {minimum}, received: {value}")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"Expected {name} to be a number, received: {raw!r}") from None
    if not 0.0 < value <= 1.0:  # also refuses NaN
        raise ConfigError(f"Expected {name} above 0 and at most 1, received: {raw}")
    return value


# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _buckets(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
    for bucket in names:
        if not _BUCKET.fullmatch(bucket):
            raise ConfigError(f"Expected {name} to list S3 bucket names, received: {bucket!r}")
    return names


def _bucket(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if raw and not _BUCKET.fullmatch(raw):
        raise ConfigError(f"Expected {name} to be an S3 bucket name, received: {raw!r}")
    return raw or None


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    runtime: RuntimeName = "auto"
    threads: int = field(default_factory=lambda: default_threads(os.environ))
    max_bytes: int = 10_000_000
    max_pixels: int = 40_000_000
    # Bounded work per request: images, pixels decoded in all, memory to decode one image.
    max_images: int = 16
    max_request_pixels: int = 100_000_000
    max_decode_bytes: int = 320_000_000
    # `imagerec serve` against slow and idle clients (seconds), and its open connections.
    idle_timeout: int = 15
    header_timeout: int = 10
    body_timeout: int = 60
    max_connections: int = 1000
    default_top_k: int = 5
    max_top_k: int = 20
    cache_dir: Path = field(default_factory=lambda: default_cache_dir(os.environ))
    labels_file: Path | None = None
    # The page `imagerec serve` serves; None means ./site, else the repository's site/.
    site_dir: Path | None = None
    metrics_namespace: str = "Imagerec"
    on_lambda: bool = False
    # True when IMAGEREC_THREADS chose the threads: then nothing divides them up.
    threads_chosen: bool = False
    # `imagerec --verbose`: TensorFlow's and LiteRT's own log lines reach the terminal too.
    verbose: bool = False
    # Uploads (POST /api/uploads): an S3 presigned POST when a bucket is set, else a local
    # folder under cache_dir with HMAC-signed forms. The cap applies to S3 references too.
    max_upload_bytes: int = 20_000_000
    upload_expires_s: int = 300
    upload_bucket: str | None = None
    readable_buckets: tuple[str, ...] = ()
    s3_endpoint_url: str | None = None
    # The region boto3 signs upload forms for (AWS's own variables): the bucket's origin in the CSP.
    aws_region: str = "us-east-1"
    # Authorization (see AuthMode). With iam or jwt, anonymous callers (the public routes)
    # may still classify photos they send or upload, unless anonymous is False.
    auth: AuthMode = "none"
    anonymous: bool = True
    # Open upload forms plus unclassified uploads one authorized caller may hold, and all
    # anonymous callers together; the bytes the local store's folder may hold.
    max_open_uploads: int = 20
    max_anonymous_uploads: int = 100
    max_store_bytes: int = 2_000_000_000
    # The local store's folder; None means cache_dir/uploads.
    upload_root: Path | None = None
    # The deployed stack `imagerec batch` drives (SAM's convention for tests and scripts).
    stack_name: str | None = None
    # When set, the one bar a summary must reach (class or category) for every model; unset,
    # each model uses the thresholds measured for it (docs/accuracy.md), else 0.6.
    summary_threshold: float | None = None

    @property
    def max_body_bytes(self) -> int:
        """Cap on a whole HTTP body: one image, base64-inflated, plus room for form framing."""
        return math.ceil(self.max_bytes * 4 / 3) + 64 * 1024

    def per_worker(self, workers: int) -> Settings:
        """The settings of one of ``workers`` processes: the CPUs split between them."""
        if self.threads_chosen or workers <= 1:
            return self
        return replace(self, threads=max(1, self.threads // workers))

    @property
    def max_upload_body_bytes(self) -> int:
        """Cap on an upload form's body: the file (sent raw) plus the form's fields."""
        return self.max_upload_bytes + 64 * 1024

    @property
    def upload_dir(self) -> Path:
        return self.upload_root or self.cache_dir / "uploads"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        runtime = env.get("IMAGEREC_RUNTIME", "auto").strip().lower() or "auto"
        if runtime not in RUNTIMES:
            raise ConfigError(
                f"Expected IMAGEREC_RUNTIME in {', '.join(RUNTIMES)}, received: {runtime!r}"
            )
        auth = env.get("IMAGEREC_AUTH", "none").strip().lower() or "none"
        if auth not in AUTH_MODES:
            raise ConfigError(
                f"Expected IMAGEREC_AUTH in {', '.join(AUTH_MODES)}, received: {auth!r}"
            )
        anonymous = env.get("IMAGEREC_ANONYMOUS", "allowed").strip().lower() or "allowed"
        if anonymous not in {"allowed", "refused"}:
            raise ConfigError(
                f"Expected IMAGEREC_ANONYMOUS to be allowed or refused, received: {anonymous!r}"
            )
        if auth == "none" and anonymous == "refused":
            raise ConfigError(
                "IMAGEREC_ANONYMOUS=refused needs IMAGEREC_AUTH=iam or jwt: with none, every "
                "caller is anonymous and nobody could call the API."
            )
        labels = env.get("IMAGEREC_LABELS", "").strip()
        cache = env.get("IMAGEREC_CACHE_DIR", "").strip()
        site = env.get("IMAGEREC_SITE_DIR", "").strip()
        upload_root = env.get("IMAGEREC_UPLOAD_DIR", "").strip()
        settings = cls(
            model=env.get("IMAGEREC_MODEL", "").strip() or DEFAULT_MODEL,
            runtime=runtime,  # type: ignore[arg-type]  # checked against RUNTIMES above
            threads=_int(env, "IMAGEREC_THREADS", default_threads(env)),
            max_bytes=_int(env, "IMAGEREC_MAX_BYTES", cls.max_bytes),
            max_pixels=_int(env, "IMAGEREC_MAX_PIXELS", cls.max_pixels),
            max_images=_int(env, "IMAGEREC_MAX_IMAGES", cls.max_images),
            max_request_pixels=_int(env, "IMAGEREC_MAX_REQUEST_PIXELS", cls.max_request_pixels),
            max_decode_bytes=_int(env, "IMAGEREC_MAX_DECODE_BYTES", cls.max_decode_bytes),
            idle_timeout=_int(env, "IMAGEREC_IDLE_TIMEOUT", cls.idle_timeout),
            header_timeout=_int(env, "IMAGEREC_HEADER_TIMEOUT", cls.header_timeout),
            body_timeout=_int(env, "IMAGEREC_BODY_TIMEOUT", cls.body_timeout),
            max_connections=_int(env, "IMAGEREC_MAX_CONNECTIONS", cls.max_connections),
            cache_dir=Path(cache) if cache else default_cache_dir(env),
            labels_file=Path(labels) if labels else None,
            site_dir=Path(site) if site else None,
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or "Imagerec",
            on_lambda=bool(env.get("AWS_LAMBDA_FUNCTION_NAME")),
            threads_chosen=bool(env.get("IMAGEREC_THREADS", "").strip()),
            max_upload_bytes=_int(env, "IMAGEREC_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            upload_expires_s=_int(env, "IMAGEREC_UPLOAD_EXPIRES", cls.upload_expires_s),
            upload_bucket=_bucket(env, "IMAGEREC_UPLOAD_BUCKET"),
            readable_buckets=_buckets(env, "IMAGEREC_READABLE_BUCKETS"),
            s3_endpoint_url=_optional(env, "IMAGEREC_S3_ENDPOINT_URL"),
            aws_region=_optional(env, "AWS_REGION")
            or _optional(env, "AWS_DEFAULT_REGION")
            or cls.aws_region,
            auth=auth,  # type: ignore[arg-type]  # checked against AUTH_MODES above
            anonymous=anonymous == "allowed",
            max_open_uploads=_int(env, "IMAGEREC_MAX_OPEN_UPLOADS", cls.max_open_uploads),
            max_anonymous_uploads=_int(
                env, "IMAGEREC_MAX_ANONYMOUS_UPLOADS", cls.max_anonymous_uploads
            ),
            max_store_bytes=_int(env, "IMAGEREC_MAX_STORE_BYTES", cls.max_store_bytes),
            upload_root=Path(upload_root) if upload_root else None,
            stack_name=env.get("AWS_SAM_STACK_NAME", "").strip() or None,
            summary_threshold=(
                _fraction(env, "IMAGEREC_SUMMARY_THRESHOLD", 0.6)
                if env.get("IMAGEREC_SUMMARY_THRESHOLD", "").strip()
                else None
            ),
        )
        given = {key: value for key, value in overrides.items() if value is not None}
        return replace(settings, **given) if given else settings  # type: ignore[arg-type]
