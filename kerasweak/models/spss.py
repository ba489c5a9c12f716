"""SPSS and SPSS+: a segmentation backbone followed by a ProportionHead (paper Figs. 2, 3).

The training model maps images to predicted proportions (SPSS+ also to the class
maps, for the keypoint loss); its nested backbone (layer "unet") is the segmenter,
whose pre-pooling class maps are the segmentation.
"""

import keras

from ..layers import EdgeAwareSmoothness, ProportionHead


def _class_maps(backbone, inputs, smoothness, from_logits):
    """The backbone's class maps, through an EdgeAwareSmoothness layer (its weight and sigma) if `smoothness` is given."""
    class_maps = backbone(inputs)
    if not smoothness:
        return class_maps
    return EdgeAwareSmoothness(**smoothness, from_logits=from_logits, name="smoothness")(inputs, class_maps)


def build_spss(backbone, smoothness=None, name="spss", from_logits=False):
    """Wrap a segmentation model (images -> class maps) into images -> proportions.

    smoothness = {"weight": w, "sigma": σ} adds the mask-free edge-aware smoothness
    prior on the class maps (layers.EdgeAwareSmoothness) to the training loss.
    from_logits=True for a backbone that outputs logits (build_unet(..., activation=None)).
    """
    inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
    class_maps = _class_maps(backbone, inputs, smoothness, from_logits)
    proportions = ProportionHead(from_logits=from_logits, name="proportions")(class_maps)
    return keras.Model(inputs, proportions, name=name)


def build_spss_plus(backbone, smoothness=None, name="spss_plus", from_logits=False):
    """Images -> {"proportions", "class_maps"}: the two outputs of SPSS+ (paper Fig. 3), the options as in build_spss.

    Compile with loss={"proportions": ProportionLoss(), "class_maps": KeypointLoss()}
    and loss_weights={"proportions": α, "class_maps": 1 - α} for eq. 4 in a plain fit;
    with from_logits=True "class_maps" are logits, so give KeypointLoss(from_logits=True).
    """
    inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
    class_maps = _class_maps(backbone, inputs, smoothness, from_logits)
    proportions = ProportionHead(from_logits=from_logits, name="proportions")(class_maps)
    return keras.Model(inputs, {"proportions": proportions, "class_maps": class_maps}, name=name)


def segmenter_of(model):
    """The images -> class-maps model inside a method model (the model itself if it is one)."""
    if isinstance(getattr(model, "backbone", None), keras.Model):  # SizeSupervisedSegmenter
        return model.backbone
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    return model
