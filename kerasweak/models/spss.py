"""SPSS: a segmentation backbone followed by a ProportionHead (paper Fig. 2).

The training model maps images to predicted proportions; its nested backbone
(layer "unet") is the segmenter, whose pre-pooling class maps are the segmentation.
"""

import keras

from ..layers import ProportionHead


def build_spss(backbone, name="spss"):
    """Wrap a segmentation model (images -> class maps) into images -> proportions."""
    inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
    proportions = ProportionHead(name="proportions")(backbone(inputs))
    return keras.Model(inputs, proportions, name=name)


def segmenter_of(model):
    """The images -> class-maps model inside a method model (the model itself if it is one)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    return model
