"""Custom Keras layers. Every layer is registered for `.keras` serialisation."""

import keras
from keras import ops


def class_probabilities(logits):
    """Class maps from logits (..., C), float32: softmax over C, or the sigmoid when C = 1 (one binary map)."""
    x = ops.cast(logits, "float32")
    return ops.sigmoid(x) if x.shape[-1] == 1 else ops.softmax(x, axis=-1)


@keras.saving.register_keras_serializable(package="kerasweak")
class ProportionHead(keras.layers.Layer):
    """Global average pooling of class maps: (B, H, W, C) -> (B, C) predicted proportions.

    With softmax class maps the output sums to 1, matching the proportion labels
    (paper "Semantic Segmentation by Semantic Proportions", Fig. 2).
    from_logits=True takes logits and pools their `class_probabilities`, so a
    logits backbone (build_unet(..., activation=None)) still gives proportions.
    Computed in float32 even under a mixed-precision policy.
    `validity` (B, H, W), 1 on the image and 0 on padding, pools the valid
    pixels only: Σ valid·p / Σ valid (a whole image scaled into a padded patch).
    """

    def __init__(self, from_logits=False, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.from_logits = bool(from_logits)

    def call(self, class_maps, validity=None):
        maps = class_probabilities(class_maps) if self.from_logits else ops.cast(class_maps, "float32")
        if validity is None:
            return ops.mean(maps, axis=(1, 2))
        weights = ops.expand_dims(ops.cast(validity, "float32"), -1)
        return ops.sum(maps * weights, axis=(1, 2)) / ops.maximum(ops.sum(weights, axis=(1, 2)), 1.0)

    def compute_output_shape(self, class_maps_shape, validity_shape=None):
        return (class_maps_shape[0], class_maps_shape[-1])

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


def edge_aware_smoothness(images, class_maps, sigma):
    """Per image: Σ over 4-neighbour pixel pairs (i, j) of Σ_c |p_ic − p_jc| · exp(−‖I_i − I_j‖² / (2σ²)), over H·W.

    Images (B, H, W, K) in raw 0-255 units (σ in the same units, ‖·‖ over the K
    channels), class maps (B, H, W, C). Each horizontal and vertical pair counts
    once; the sum is divided by the pixel count, so a weight means the same at every size.
    """
    x, p = ops.cast(images, "float32"), ops.cast(class_maps, "float32")
    pairs = ((x[:, 1:] - x[:, :-1], p[:, 1:] - p[:, :-1]), (x[:, :, 1:] - x[:, :, :-1], p[:, :, 1:] - p[:, :, :-1]))
    total = sum(ops.sum(ops.sum(ops.abs(dp), axis=-1) * ops.exp(-ops.sum(ops.square(dx), axis=-1) / (2.0 * sigma ** 2)),
                        axis=(1, 2)) for dx, dp in pairs)
    return total / ops.cast(ops.shape(p)[1] * ops.shape(p)[2], "float32")


@keras.saving.register_keras_serializable(package="kerasweak")
class EdgeAwareSmoothness(keras.layers.Layer):
    """A smoothness prior that needs no masks: (images, class maps) -> class maps, adding a loss.

    Adds `weight` × the batch mean of `edge_aware_smoothness(images, class_maps, sigma)`
    with `add_loss`, so a plain `fit` minimises it beside the compiled losses:
    neighbouring pixels of similar colour are pushed to the same class, while
    changes of class across image edges cost little. Returns the class maps
    unchanged; from_logits=True scores the `class_probabilities` of logits.
    Float32 even under a mixed-precision policy.
    """

    def __init__(self, weight, sigma=15.0, from_logits=False, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.weight = float(weight)
        self.sigma = float(sigma)
        self.from_logits = bool(from_logits)

    def call(self, images, class_maps):
        maps = class_probabilities(class_maps) if self.from_logits else class_maps
        self.add_loss(self.weight * ops.mean(edge_aware_smoothness(images, maps, self.sigma)))
        return class_maps

    def compute_output_shape(self, images_shape, class_maps_shape):
        return class_maps_shape

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "sigma": self.sigma, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="kerasweak")
class SemedaNet(keras.layers.Layer):
    """The SEMEDA edge network g_φ (section 3.4): C-channel class maps -> 2-channel edge map.

    Three 3×3 convolutions, 16 -> 32 -> 2 channels, ReLU then softmax, each on a
    replicate-padded input, so the image border looks like the inside and never
    like an edge (the convention of `kerasweak.ops.semantic_edges`).
    `call(x, return_embeddings=True)` returns the L = 3 layer outputs ψ_1..ψ_3
    that SemedaLoss compares (eq. 5). Set `trainable = False` to freeze it; the
    flag is in the config and reaches the convolutions at construction, so a
    frozen net stays frozen after a `.keras` round trip. Float32 weights; `call`
    computes in float32, `embeddings` in a dtype of the caller's choice.
    """

    WIDTHS = (16, 32, 2)
    ACTIVATIONS = ("relu", "relu", "softmax")

    def __init__(self, num_classes, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.convs = [keras.layers.Conv2D(width, 3, activation=activation, trainable=self.trainable,
                                          dtype=self.dtype_policy, name=f"conv{i + 1}")
                      for i, (width, activation) in enumerate(zip(self.WIDTHS, self.ACTIVATIONS))]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)

    def call(self, class_maps, return_embeddings=False):
        embeddings = self.embeddings(class_maps, compute_dtype="float32")
        return embeddings if return_embeddings else embeddings[-1]

    def embeddings(self, class_maps, depth=None, compute_dtype="float32"):
        """The outputs ψ_1..ψ_depth of the first `depth` layers (all L by default), computed in `compute_dtype`.

        Each layer is its convolution's kernel, bias and activation applied to the
        replicate-padded previous output; the net must be built.
        """
        x = ops.cast(class_maps, compute_dtype)
        embeddings = []
        for conv in self.convs[:depth]:
            x = ops.conv(ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric"), ops.cast(conv.kernel, compute_dtype))
            x = conv.activation(x + ops.cast(conv.bias, compute_dtype))
            embeddings.append(x)
        return embeddings

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="kerasweak")
class ReflectPadding2D(keras.layers.Layer):
    """Pad (B, H, W, C) by `width` pixels on each side of H and W, mirroring the image (numpy's "reflect").

    Before a "valid" convolution it gives a "same"-sized output whose border
    pixels see mirrored image instead of zeros, so the network cannot tell where
    its input ends (the U-Net's padding = "reflect").
    """

    def __init__(self, width=1, **kwargs):
        super().__init__(**kwargs)
        self.width = int(width)

    def call(self, inputs):
        w = self.width
        return ops.pad(inputs, [[0, 0], [w, w], [w, w], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        height, width = (None if size is None else size + 2 * self.width for size in input_shape[1:3])
        return (input_shape[0], height, width, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def _training_step_counter(layer):
    """A non-trainable int32 weight counting a layer's training calls: saved with the model, so a resumed fit goes on."""
    return layer.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                            aggregation="only_first_replica", name="step")


@keras.saving.register_keras_serializable(package="kerasweak")
class CoarseStart(keras.layers.Layer):
    """Progressive resizing: for the first `steps` training calls, average-pool the images by `factor`; then identity.

    The network trains on (H/f)×(W/f) images at about 1/f² of a step's cost while
    it learns coarse features, then on full-size ones. Proportion targets stay
    exact: pooling an image does not change the share of each class in the scene.
    `step` is a non-trainable weight, so a resumed fit goes on where it was;
    inference (training=False) always sees the full-size image. Training needs
    TensorFlow: the pooled and full-size branches differ in shape, which
    TensorFlow's cond allows and JAX's does not.
    """

    def __init__(self, factor=2, steps=0, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.steps = int(factor), int(steps)

    def build(self, input_shape):
        self.step = _training_step_counter(self)

    def call(self, images, training=False):
        if not training or not self.steps:
            return images
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(f"CoarseStart trains on the TensorFlow backend only (its branches differ in "
                                      f"shape), not on {keras.backend.backend()}; set coarse_epochs = 0")
        self.step.assign_add(1)
        return ops.cond(self.step <= self.steps, lambda: ops.average_pool(images, self.factor, self.factor),
                        lambda: images)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "steps": self.steps}


@keras.saving.register_keras_serializable(package="kerasweak")
class GradientRamp(keras.layers.Layer):
    """Identity whose gradient is scaled by min(1, step / ramp_steps): a loss on its output comes in linearly over training.

    `step` counts the training calls, a non-trainable weight, so a resumed fit
    goes on with the ramp; ramp_steps = 0 passes the gradient whole. The forward
    value, hence the logged loss, is never scaled: the validation loss stays the
    same objective from epoch to epoch (early stopping compares like with like)
    while the ramp weighs the term's training gradient.
    """

    def __init__(self, ramp_steps=0, **kwargs):
        super().__init__(**kwargs)
        self.ramp_steps = int(ramp_steps)

    def build(self, input_shape):
        self.step = _training_step_counter(self)

    def call(self, inputs, training=False):
        if not training or not self.ramp_steps:
            return inputs
        scale = ops.cast(ops.minimum(ops.cast(self.step, "float32") / self.ramp_steps, 1.0), inputs.dtype)
        self.step.assign_add(1)
        held = ops.stop_gradient(inputs)
        return held + scale * (inputs - held)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "ramp_steps": self.ramp_steps}
