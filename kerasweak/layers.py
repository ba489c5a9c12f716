"""Custom Keras layers. Every layer is registered for `.keras` serialisation."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasweak")
class ProportionHead(keras.layers.Layer):
    """Global average pooling of class maps: (B, H, W, C) -> (B, C) predicted proportions.

    With softmax class maps the output sums to 1, matching the proportion labels
    (paper "Semantic Segmentation by Semantic Proportions", Fig. 2). Computed in
    float32 even under a mixed-precision policy.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, class_maps):
        return ops.mean(ops.cast(class_maps, "float32"), axis=(1, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="kerasweak")
class SemedaNet(keras.layers.Layer):
    """The SEMEDA edge network g_φ (section 3.4): C-channel class maps -> 2-channel edge map.

    Three 3×3 convolutions, 16 -> 32 -> 2 channels, ReLU then softmax, each on a
    replicate-padded input, so the image border looks like the inside and never
    like an edge (the convention of `kerasweak.ops.semantic_edges`).
    `call(x, return_embeddings=True)` returns the L = 3 layer outputs ψ_1..ψ_3
    that SemedaLoss compares (eq. 5). Set `trainable = False` to freeze it; the
    flag is in the config and reaches the convolutions at construction, so a
    frozen net stays frozen after a `.keras` round trip. Float32 throughout.
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
        x = ops.cast(class_maps, "float32")
        embeddings = []
        for conv in self.convs:
            x = conv(ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric"))
            embeddings.append(x)
        return embeddings if return_embeddings else x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
