"""The modified U-Net of "Semantic Segmentation by Semantic Proportions" (section 3).

Four contracting blocks (two 3×3 conv + ReLU, then 2×2 max-pool) with filters
doubling block by block, a bottleneck of two 3×3 convs, four expansive blocks
(2×2 stride-2 transposed-conv upsampling, skip concatenation, two 3×3 transposed
convs + ReLU), and a 1×1 conv with softmax to C classes (sigmoid when C = 1), or
no activation at all (logits, `activation=None`, as keras-hub's segmenters offer).

The model takes raw pixel values (0-255, any H×W that is a multiple of 16) and
rescales them itself, so exported models need no external preprocessing.
"""

import keras
from keras import layers

DEPTH = 4


def build_unet(num_classes, base_filters=16, channels=3, name="unet", activation="auto"):
    """Return a functional U-Net mapping (B, H, W, channels) raw pixels to (B, H, W, C) class maps.

    activation="auto" gives probabilities (softmax, sigmoid when C = 1); None gives
    logits, for losses and heads built with from_logits=True; any other Keras
    activation name is applied as given. The output layer is "class_maps", float32
    under any dtype policy, and the pre-activation layer is always "class_logits".
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    inputs = keras.Input(shape=(None, None, channels), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    skips = []
    for level in range(DEPTH):
        filters = base_filters * 2 ** level
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"down{level}_conv1")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"down{level}_conv2")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    bottom = base_filters * 2 ** DEPTH
    x = layers.Conv2D(bottom, 3, padding="same", activation="relu", name="bottleneck_conv1")(x)
    x = layers.Conv2D(bottom, 3, padding="same", activation="relu", name="bottleneck_conv2")(x)
    for level in reversed(range(DEPTH)):
        filters = base_filters * 2 ** level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}_upsample")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = layers.Conv2DTranspose(filters, 3, padding="same", activation="relu", name=f"up{level}_conv1")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same", activation="relu", name=f"up{level}_conv2")(x)
    logits = layers.Conv2D(num_classes, 1, name="class_logits")(x)
    if activation == "auto":
        activation = "sigmoid" if num_classes == 1 else "softmax"
    class_maps = layers.Activation(activation or "linear", dtype="float32", name="class_maps")(logits)
    return keras.Model(inputs, class_maps, name=name)
