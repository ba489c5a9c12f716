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
