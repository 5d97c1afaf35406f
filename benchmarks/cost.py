"""Cost per million images on Lambda, from a measured duration and stated list prices.

Pure arithmetic over the results and the prices below: nothing here measures anything.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from benchmarks.plan import Json
from imagerec.core.settings import default_threads

MILLION = 1_000_000
ARCHITECTURES = ("x86_64", "arm64")


@dataclass(frozen=True)
class Source:
    what: str
    url: str


@dataclass(frozen=True)
class Prices:
    """On-demand list prices, us-east-1, checked on ``checked``; free tiers left out."""

    checked: str = "2026-11-25"
    region: str = "us-east-1"
    lambda_gb_s_x86_64: float = 0.0000166667
    lambda_gb_s_arm64: float = 0.0000133334
    lambda_per_million_requests: float = 0.20
    http_api_per_million_requests: float = 1.00  # the first 300 million a month
    http_api_metering_bytes: int = 512 * 1024  # a request is metered per started 512 KB
    rekognition_per_image: float = 0.001  # DetectLabels (Group 2), the first million a month

    def gb_s(self, architecture: str) -> float:
        return self.lambda_gb_s_x86_64 if architecture == "x86_64" else self.lambda_gb_s_arm64


PRICES = Prices()
SOURCES = (
    Source("Lambda duration and requests", "https://aws.amazon.com/lambda/pricing/"),
    Source(
        "1,769 MB of memory = one vCPU",
        "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html",
    ),
    Source("HTTP API requests", "https://aws.amazon.com/api-gateway/pricing/"),
    Source("Rekognition DetectLabels", "https://aws.amazon.com/rekognition/pricing/"),
)


def lambda_threads(memory_mb: int) -> int:
    """The inference threads imagerec's settings choose on Lambda with this much memory."""
    return default_threads({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)})


def http_api_requests(photo_bytes: int, prices: Prices = PRICES) -> int:
    """How many requests the HTTP API meters for one upload of ``photo_bytes``."""
    return max(1, math.ceil(photo_bytes / prices.http_api_metering_bytes))


def per_million(
    billed_ms: float, memory_mb: int, photo_bytes: int, architecture: str, prices: Prices = PRICES
) -> Json:
    """The bill for a million images, one invocation each, split by what is charged."""
    gb_s = MILLION * (billed_ms / 1000) * (memory_mb / 1024)
    duration = gb_s * prices.gb_s(architecture)
    requests = prices.lambda_per_million_requests
    api = prices.http_api_per_million_requests * http_api_requests(photo_bytes, prices)
    return {
        "architecture": architecture,
        "gb_s": round(gb_s, 1),
        "duration_usd": round(duration, 2),
        "requests_usd": round(requests, 2),
        "http_api_usd": round(api, 2),
        "total_usd": round(duration + requests + api, 2),
    }


def rekognition_per_million(prices: Prices = PRICES) -> float:
    return round(MILLION * prices.rekognition_per_image, 2)


def duration_basis(results: Json, size: str) -> Json | None:
    """The per-image duration at Lambda's thread count that the cost rests on, and where it
    comes from: the measured handler at Lambda's memory when the run has it; else composed
    from this run's parts (decode and preprocessing medians in-process, which run on one
    thread, plus LiteRT inference at Lambda's thread count from the ONNX section)."""
    measured = results.get("lambda", {}).get(size)
    if measured and "billed_ms_mean" in measured:
        return {
            "kind": "measured",
            "ms": measured["billed_ms_mean"],
            "memory_mb": results["lambda"]["memory_mb"],
            "threads": results["lambda"]["threads"],
        }
    memory = results.get("plan", {}).get("lambda_memory_mb", 2048)
    threads = lambda_threads(memory)
    stages = results.get("warm", {}).get("litert", {}).get(size, {}).get("stages_p50", {})
    inference = results.get("onnx", {}).get("threads", {}).get(str(threads), {}).get("litert", {})
    if not stages or "p50" not in inference:
        return None
    decode, preprocess = stages.get("decode", 0.0), stages.get("preprocess", 0.0)
    return {
        "kind": "composed",
        "ms": round(decode + preprocess + inference["p50"], 3),
        "memory_mb": memory,
        "threads": threads,
        "parts": {"decode": decode, "preprocess": preprocess, "inference": inference["p50"]},
    }


def lambda_costs(results: Json, prices: Prices = PRICES) -> Json:
    """Per photo size: the duration basis and the bill per million on each architecture."""
    out: Json = {"prices": asdict(prices), "rekognition_usd": rekognition_per_million(prices)}
    for size in ("small", "big"):
        basis = duration_basis(results, size)
        photos = results.get("photos", {}).get(size, [])
        if basis is None or not photos:
            continue
        photo_bytes = round(sum(p["bytes"] for p in photos) / len(photos))
        billed = math.ceil(basis["ms"]) if basis["kind"] == "composed" else basis["ms"]
        out[size] = {
            "basis": basis,
            "billed_ms": billed,
            "photo_bytes": photo_bytes,
            "http_api_requests": http_api_requests(photo_bytes, prices),
            "per_million": {
                arch: per_million(billed, basis["memory_mb"], photo_bytes, arch, prices)
                for arch in ARCHITECTURES
            },
        }
    return out
