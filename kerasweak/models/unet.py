"""The modified U-Net of "Semantic Segmentation by Semantic Proportions" (section 3).

Four contracting blocks (two 3×3 conv + ReLU, then 2×2 max-pool) with filters
doubling block by block, a bottleneck of two 3×3 convs, four expansive blocks
(2×2 stride-2 transposed-conv upsampling, skip concatenation, two 3×3 transposed
convs + ReLU), and a 1×1 conv with softmax to C classes (sigmoid when C = 1), or
no activation at all (logits, `activation=None`, as keras-hub's segmenters offer).

padding="zeros" pads every 3×3 convolution with zeros (Keras "same", the paper's
network); padding="reflect" mirrors the image there instead, so no layer can tell
where the input ends and a proportion loss cannot buy class mass with a stripe
along the edge (docs/protocol.md, "Reflected context"). With reflect padding the
stride-1 3×3 transposed convolutions of the expansive path are plain 3×3
convolutions, the same function class (a transposed convolution at stride 1 is a
convolution with the kernel flipped). Mirroring needs two pixels at the bottleneck,
so reflect padding takes inputs of at least 32×32.

The model takes raw pixel values (0-255, any H×W that is a multiple of 16) and
rescales them itself, so exported models need no external preprocessing.
"""

import keras
from keras import layers

from ..layers import ReflectPadding2D

DEPTH = 4
PADDINGS = ("zeros", "reflect")


def _conv3x3(x, filters, name, padding, transposed=False):
    """A 3×3 ReLU convolution keeping H×W: zero "same" padding, or a reflect pad then a "valid" convolution."""
    if padding == "reflect":
        return layers.Conv2D(filters, 3, padding="valid", activation="relu", name=name)(ReflectPadding2D(1, name=f"{name}_pad")(x))
    conv = layers.Conv2DTranspose if transposed else layers.Conv2D
    return conv(filters, 3, padding="same", activation="relu", name=name)(x)


def build_unet(num_classes, base_filters=16, channels=3, name="unet", activation="auto", padding="zeros"):
    """Return a functional U-Net mapping (B, H, W, channels) raw pixels to (B, H, W, C) class maps.

    activation="auto" gives probabilities (softmax, sigmoid when C = 1); None gives
    logits, for losses and heads built with from_logits=True; any other Keras
    activation name is applied as given. The output layer is "class_maps", float32
    under any dtype policy, and the pre-activation layer is always "class_logits".
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    inputs = keras.Input(shape=(None, None, channels), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    skips = []
    for level in range(DEPTH):
        filters = base_filters * 2 ** level
        x = _conv3x3(x, filters, f"down{level}_conv1", padding)
        x = _conv3x3(x, filters, f"down{level}_conv2", padding)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    bottom = base_filters * 2 ** DEPTH
    x = _conv3x3(x, bottom, "bottleneck_conv1", padding)
    x = _conv3x3(x, bottom, "bottleneck_conv2", padding)
    for level in reversed(range(DEPTH)):
        filters = base_filters * 2 ** level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}_upsample")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = _conv3x3(x, filters, f"up{level}_conv1", padding, transposed=True)
        x = _conv3x3(x, filters, f"up{level}_conv2", padding, transposed=True)
    logits = layers.Conv2D(num_classes, 1, name="class_logits")(x)
    if activation == "auto":
        activation = "sigmoid" if num_classes == 1 else "softmax"
    class_maps = layers.Activation(activation or "linear", dtype="float32", name="class_maps")(logits)
    return keras.Model(inputs, class_maps, name=name)
