"""Inference runtimes: each turns an N×S×S×3 float32 batch into N×C probabilities.

LiteRT (XNNPACK) is the fast one and needs no TensorFlow; Keras through a compiled
``tf.function`` is the reference. TensorFlow is imported only when Keras is chosen.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imagerec.core.errors import ModelError


class Runtime(Protocol):
    name: str

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


def _check_batch(batch: np.ndarray, size: int) -> np.ndarray:
    if batch.ndim != 4 or batch.shape[1:] != (size, size, 3):
        raise ValueError(
            f"Expected a batch of shape (N, {size}, {size}, 3), received: {batch.shape}"
        )
    return np.ascontiguousarray(batch, dtype=np.float32)


@contextmanager
def native_stderr_silenced(silenced: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration.

    LiteRT's C++ core writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight
    to fd 2 when the first interpreter allocates its tensors, and has no switch for it; Python's
    ``sys.stderr`` cannot catch it. Failures still surface, as the exceptions LiteRT raises.
    """
    if not silenced:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@dataclass
class _Slot:
    """One interpreter with what ``predict`` needs from it, looked up once, not per call."""

    interpreter: Any
    input_index: int
    output_index: int
    batch: int


class LiteRTRuntime:
    """One LiteRT interpreter. It is not thread-safe, so calls take turns on a lock: a
    Lambda environment sends one request at a time, and the local server scales with
    processes (``serve --workers``), each with its own interpreter."""

    name = "litert"

    def __init__(self, path: Path, *, threads: int, quiet: bool = True) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise ModelError(
                "The LiteRT runtime needs the ai-edge-litert package; install it or set "
                "IMAGEREC_RUNTIME=keras."
            ) from error
        try:
            interpreter = Interpreter(model_path=os.fspath(path), num_threads=threads)
            with native_stderr_silenced(quiet):
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"LiteRT cannot load {path}: {error}") from error
        # get_input_details() builds dicts of quantisation and sparsity data on every call;
        # the indices never change, so read them once.
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        self._slot = _Slot(interpreter, int(inp["index"]), int(out["index"]), int(inp["shape"][0]))
        self._lock = threading.Lock()
        self.input_size = int(inp["shape"][1])
        self.num_classes = int(out["shape"][-1])

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = _check_batch(batch, self.input_size)
        with self._lock:
            slot = self._slot
            interpreter = slot.interpreter
            if batch.shape[0] != slot.batch:
                interpreter.resize_tensor_input(slot.input_index, batch.shape, strict=False)
                interpreter.allocate_tensors()
                slot.batch = batch.shape[0]
            interpreter.set_tensor(slot.input_index, batch)
            interpreter.invoke()
            # get_tensor returns a copy, so the result survives the interpreter's next call.
            result: np.ndarray = interpreter.get_tensor(slot.output_index)
            return result


class KerasRuntime:
    """The reference: the saved Keras model called through one compiled ``tf.function``."""

    name = "keras"

    def __init__(self, path: Path, *, threads: int) -> None:
        import tensorflow as tf

        # Thread pools can be sized only before TensorFlow runs its first op.
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
        import keras

        try:
            model = keras.saving.load_model(path, compile=False)
        except (OSError, ValueError) as error:
            raise ModelError(f"Keras cannot load {path}: {error}") from error
        self.input_size = int(model.input_shape[1])
        self.num_classes = int(model.output_shape[-1])
        self._model = model
        self._call = tf.function(
            lambda x: model(x, training=False),
            input_signature=[
                tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)
            ],
            reduce_retracing=True,
        )

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = _check_batch(batch, self.input_size)
        return np.asarray(self._call(batch))
