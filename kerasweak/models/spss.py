"""SPSS and SPSS+: a segmentation backbone followed by a ProportionHead (paper Figs. 2, 3).

The training model maps images to predicted proportions (SPSS+ also to the class
maps, for the keypoint loss); its nested backbone (layer "unet") is the segmenter,
whose pre-pooling class maps are the segmentation.
"""

import keras
import numpy as np

from ..layers import CoarseStart, EdgeAwareSmoothness, GradientRamp, ProportionHead

VALID_LEVEL = 127.5  # validity channel threshold: valid pixels are 255, padding 0


def _coarse(inputs, coarse):
    """The inputs through a CoarseStart layer (coarse = {"factor", "steps"}), or as they are when coarse is None."""
    return inputs if not coarse else CoarseStart(**coarse, name="coarse_start")(inputs)


def _class_maps(backbone, inputs, smoothness, from_logits):
    """The backbone's class maps, through an EdgeAwareSmoothness layer (its weight and sigma) if `smoothness` is given."""
    class_maps = backbone(inputs)
    if not smoothness:
        return class_maps
    return EdgeAwareSmoothness(**smoothness, from_logits=from_logits, name="smoothness")(inputs, class_maps)


def build_spss(backbone, smoothness=None, name="spss", from_logits=False, validity_channel=False, coarse=None):
    """Wrap a segmentation model (images -> class maps) into images -> proportions.

    smoothness = {"weight": w, "sigma": σ} adds the mask-free edge-aware smoothness
    prior on the class maps (layers.EdgeAwareSmoothness) to the training loss.
    from_logits=True for a backbone that outputs logits (build_unet(..., activation=None)).
    validity_channel=True takes one more input channel after the image's, above
    VALID_LEVEL on the image and 0 on padding (`with_validity_channel`), and pools
    the valid pixels only; the backbone sees the image channels.
    coarse = {"factor": f, "steps": n} trains the first n steps on images
    average-pooled by f (layers.CoarseStart, progressive resizing).
    """
    shape = backbone.input_shape[1:]
    if not validity_channel:
        inputs = keras.Input(shape=shape, name="image")
        class_maps = _class_maps(backbone, _coarse(inputs, coarse), smoothness, from_logits)
        proportions = ProportionHead(from_logits=from_logits, name="proportions")(class_maps)
        return keras.Model(inputs, proportions, name=name)
    inputs = keras.Input(shape=(*shape[:-1], shape[-1] + 1), name="image_and_validity")
    images = _coarse(inputs, coarse)
    class_maps = _class_maps(backbone, images[..., :-1], smoothness, from_logits)
    validity = keras.ops.cast(images[..., -1] > VALID_LEVEL, "float32")
    proportions = ProportionHead(from_logits=from_logits, name="proportions")(class_maps, validity)
    return keras.Model(inputs, proportions, name=name)


def with_validity_channel(images, valid):
    """(N, H, W, K) uint8 images and (N, H, W) 0/1 validity -> (N, H, W, K + 1), the validity as 0/255.

    255 and the threshold VALID_LEVEL survive colour jitter (kerasweak.data.augment),
    and spatial transforms move the channel with the image.
    """
    return np.concatenate([images, (np.asarray(valid, np.uint8) * 255)[..., None]], axis=-1)


def build_spss_plus(backbone, smoothness=None, name="spss_plus", from_logits=False, pseudo_label_ramp_steps=None,
                    entropy_ramp_steps=None):
    """Images -> {"proportions", "class_maps"}: the two outputs of SPSS+ (paper Fig. 3), the options as in build_spss.

    Compile with loss={"proportions": ProportionLoss(), "class_maps": KeypointLoss()}
    and loss_weights={"proportions": α, "class_maps": 1 - α} for eq. 4 in a plain fit;
    with from_logits=True "class_maps" are logits, so give KeypointLoss(from_logits=True).
    pseudo_label_ramp_steps and entropy_ramp_steps add "pseudo_label_maps" and
    "entropy_maps" as in build_spss_signals (their target: the proportions).
    """
    inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
    class_maps = _class_maps(backbone, inputs, smoothness, from_logits)
    outputs = {"proportions": ProportionHead(from_logits=from_logits, name="proportions")(class_maps),
               "class_maps": class_maps}
    outputs.update(_ramped_outputs(class_maps, pseudo_label_ramp_steps, entropy_ramp_steps))
    return keras.Model(inputs, outputs, name=name)


def _ramped_outputs(class_maps, pseudo_label_ramp_steps, entropy_ramp_steps):
    """{"pseudo_label_maps", "entropy_maps"}: the class maps through a GradientRamp each, for the ramp steps not None."""
    steps = {"pseudo_label_maps": pseudo_label_ramp_steps, "entropy_maps": entropy_ramp_steps}
    return {output: GradientRamp(ramp, name=output)(class_maps) for output, ramp in steps.items() if ramp is not None}


def build_spss_signals(backbone, smoothness=None, presence=False, pseudo_label_ramp_steps=None, entropy_ramp_steps=None,
                       name="spss", from_logits=False, coarse=None):
    """Images -> {"proportions"} plus the class maps for the losses that read them with the proportions as target.

    presence=True adds "class_maps" (for proportion_losses.ClassPresenceLoss); an
    integer pseudo_label_ramp_steps adds "pseudo_label_maps" (for PseudoLabelLoss),
    the class maps through a GradientRamp of that many steps (0: no ramp);
    entropy_ramp_steps likewise adds "entropy_maps" (for EntropyLoss).
    Compile with the proportions as the target of every output; the options as in build_spss.
    """
    inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
    class_maps = _class_maps(backbone, _coarse(inputs, coarse), smoothness, from_logits)
    outputs = {"proportions": ProportionHead(from_logits=from_logits, name="proportions")(class_maps)}
    if presence:
        outputs["class_maps"] = class_maps
    outputs.update(_ramped_outputs(class_maps, pseudo_label_ramp_steps, entropy_ramp_steps))
    return keras.Model(inputs, outputs, name=name)


def segmenter_of(model):
    """The images -> class-maps model inside a method model (the model itself if it is one)."""
    if isinstance(getattr(model, "backbone", None), keras.Model):  # SizeSupervisedSegmenter
        return model.backbone
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    return model
