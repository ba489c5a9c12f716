"""The backend checks of tests/test_backends.py: the same computations under whichever Keras backend runs them.

`forward(inputs)` evaluates every layer, loss, metric, edge op and model builder
on fixed arrays and returns {name: numpy array}; the test runs it under
TensorFlow in its own process and under JAX in a fresh one and compares.
`fit_checks()` trains tiny models with `model.fit` (jit-compiled) and returns
their histories. As a script, `python backend_checks.py IN.npz FORWARD.npz FITS.json`
does both under the KERAS_BACKEND it is given.
"""

import json
import sys

import keras
import numpy as np
from keras import ops

from kerasweak import layers, losses, metrics, models, proportion_losses
from kerasweak.ops import boundary_band, semantic_edges, sobel_edges

CLASSES = 3


def make_inputs(seed=0):
    """Fixed arrays: logits and labels of 2 images of 8×8 pixels, raw 16×16 images, proportions, weights."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, (2, 8, 8))
    labels[0, :2, :3] = 255
    binary = rng.integers(0, 2, (2, 8, 8))
    binary[1, 5:, 6:] = 255
    annotated = rng.random((2, 8, 8, CLASSES)) < 0.2
    return {"logits": rng.normal(0, 2, (2, 8, 8, CLASSES)).astype("float32"),
            "logits1": rng.normal(0, 2, (2, 8, 8, 1)).astype("float32"),
            "labels": labels, "binary": binary,
            "pixel_weight": rng.random((2, 8, 8)).astype("float32"),
            "proportions": rng.dirichlet(np.ones(CLASSES), 2).astype("float32"),
            "proportions1": rng.random((2, 1)).astype("float32"),
            "keypoints": losses.pack_keypoints(np.eye(CLASSES)[labels % CLASSES] * annotated, annotated),
            "images": rng.uniform(0, 255, (2, 16, 16, 3)).astype("float32"),
            "seed": np.array(seed)}


def _set_weights(model, seed):
    """Deterministic small weights, the same on every backend (Keras orders weights alike)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _edge_net():
    edge_net = layers.SemedaNet(CLASSES)
    edge_net.build((None, None, None, CLASSES))
    return _set_weights(edge_net, 1)


def _layer_values(x):
    probs = layers.class_probabilities(x["logits"])
    smoothness = layers.EdgeAwareSmoothness(0.5, sigma=15.0, from_logits=True)
    passed = smoothness(x["images"][:, :8, :8], x["logits"])
    edge_net = _edge_net()
    return {"class_probabilities": probs, "class_probabilities1": layers.class_probabilities(x["logits1"]),
            "ProportionHead": layers.ProportionHead()(probs),
            "ProportionHead_logits": layers.ProportionHead(from_logits=True)(x["logits"]),
            "edge_aware_smoothness": layers.edge_aware_smoothness(x["images"][:, :8, :8], probs, 15.0),
            "EdgeAwareSmoothness": passed, "EdgeAwareSmoothness_loss": smoothness.losses[0],
            "SemedaNet": edge_net(probs), **{f"SemedaNet_psi{i}": psi for i, psi in
                                             enumerate(edge_net(probs, return_embeddings=True), 1)},
            "GradientRamp": layers.GradientRamp(3)(probs, training=True),
            "ReflectPadding2D": layers.ReflectPadding2D(2)(x["images"]),
            "CoarseStart_inference": layers.CoarseStart(2, steps=1)(x["images"])}  # training needs TensorFlow


def _loss_values(x):
    probs = layers.class_probabilities(x["logits"])
    probs1 = layers.class_probabilities(x["logits1"])
    edge_net = _edge_net()
    per_image = {"reduction": None}
    values = {}
    for form in losses.PROPORTION_FORMS:
        values[f"ProportionLoss_{form}"] = losses.ProportionLoss(form, **per_image)(x["proportions"], x["proportions"][::-1])
        values[f"ProportionLoss_{form}_logits"] = losses.ProportionLoss(form, from_logits=True, **per_image)(
            x["proportions"], x["logits"][:, 0, 0])
        values[f"ProportionLoss_{form}_1"] = losses.ProportionLoss(form, **per_image)(x["proportions1"], x["proportions1"][::-1])
    pixel = {"PixelCrossEntropy": losses.PixelCrossEntropy, "SobelEdgeLoss": losses.SobelEdgeLoss,
             "SemedaLoss": lambda **kw: losses.SemedaLoss(edge_net, **kw)}
    for name, make in pixel.items():
        values[name] = make(**per_image)(x["labels"], probs)
        values[f"{name}_logits"] = make(from_logits=True, **per_image)(x["labels"], x["logits"])
        values[f"{name}_weighted"] = make(**per_image)(x["labels"], probs, sample_weight=x["pixel_weight"])
        values[f"{name}_mean"] = make(from_logits=True)(x["labels"], x["logits"], sample_weight=x["pixel_weight"])
    values["PixelCrossEntropy_1"] = losses.PixelCrossEntropy(**per_image)(x["binary"], probs1)
    values["PixelCrossEntropy_1_logits"] = losses.PixelCrossEntropy(from_logits=True, **per_image)(x["binary"], x["logits1"])
    values["KeypointLoss"] = losses.KeypointLoss(**per_image)(x["keypoints"], probs)
    values["KeypointLoss_logits"] = losses.KeypointLoss(from_logits=True)(x["keypoints"], x["logits"],
                                                                          sample_weight=x["pixel_weight"])
    signals = {"IntervalProportionLoss": (proportion_losses.IntervalProportionLoss, x["proportions"][::-1]),
               "PseudoLabelLoss": (proportion_losses.PseudoLabelLoss, probs),
               "ClassPresenceLoss": (lambda **kw: proportion_losses.ClassPresenceLoss(present_weight=0.5, **kw), probs),
               "EntropyLoss": (proportion_losses.EntropyLoss, probs)}
    for name, (make, y_pred) in signals.items():
        values[name] = make(**per_image)(x["proportions"] * (x["proportions"] > 0.2), y_pred)
    values["PseudoLabelLoss_1_logits"] = proportion_losses.PseudoLabelLoss(from_logits=True, **per_image)(
        x["proportions1"], x["logits1"])
    values["EntropyLoss_1_logits"] = proportion_losses.EntropyLoss(from_logits=True, **per_image)(
        x["proportions1"], x["logits1"])
    return values


def _metric_values(x):
    values = {}
    for name, metric, y_pred, y_true in (("MeanIoU", metrics.MeanIoU(CLASSES), layers.class_probabilities(x["logits"]), x["labels"]),
                                         ("MeanIoU_logits", metrics.MeanIoU(CLASSES, from_logits=True), x["logits"], x["labels"]),
                                         ("MeanIoU_1", metrics.MeanIoU(2, from_logits=True), x["logits1"], x["binary"])):
        metric.update_state(y_true, y_pred, sample_weight=x["pixel_weight"])
        metric.update_state(y_true[::-1], y_pred)
        values[name], values[f"{name}_matrix"] = metric.result(), metric.matrix
    return values


def _edge_values(x):
    return {"semantic_edges": semantic_edges(x["labels"]), "boundary_band": boundary_band(x["labels"], 2),
            "sobel_edges": sobel_edges(layers.class_probabilities(x["logits"]))}


def _model_values(x):
    unet = _set_weights(models.build_unet(CLASSES, base_filters=2), 2)
    logits = _set_weights(models.build_unet(CLASSES, base_filters=2, activation=None), 2)
    reflect = _set_weights(models.build_unet(CLASSES, base_filters=2, padding="reflect"), 2)
    spss = models.build_spss(unet, smoothness={"weight": 0.1, "sigma": 15.0})
    spss_plus = models.build_spss_plus(logits, from_logits=True)
    both = spss_plus.predict(x["images"], verbose=0)
    return {"build_unet": unet.predict(x["images"], verbose=0), "build_unet_logits": logits.predict(x["images"], verbose=0),
            "build_unet_reflect": reflect.predict(np.tile(x["images"], (1, 2, 2, 1)), verbose=0),  # sides >= 32
            "build_spss": spss.predict(x["images"], verbose=0), "build_spss_plus_proportions": both["proportions"],
            "build_spss_plus_class_maps": both["class_maps"], "segmenter_of": models.segmenter_of(spss).predict(x["images"], verbose=0)}


def forward(inputs):
    """{name: numpy array} of every check above, computed with the current backend."""
    keras.utils.set_random_seed(int(inputs["seed"]))
    values = {**_layer_values(inputs), **_loss_values(inputs), **_metric_values(inputs), **_edge_values(inputs),
              **_model_values(inputs)}
    return {name: np.asarray(ops.convert_to_numpy(value)) for name, value in values.items()}


def _history(model, *data, **fit):
    return model.fit(*data, epochs=2, batch_size=2, verbose=0, **fit).history


def fit_checks(seed=0):
    """{check: {metric: [per-epoch values]}} of tiny jit-compiled fits: SPSS (+ smoothness), pixel CE + MeanIoU, SPSS+, edge losses."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, (4, 16, 16))
    labels[:, :2] = 255
    proportions = np.eye(CLASSES)[labels % CLASSES].mean(axis=(1, 2)).astype("float32")
    annotated = rng.random((4, 16, 16, 1)) < 0.1
    keypoints = losses.pack_keypoints((labels[..., None] == 1) * annotated, annotated)
    weight = rng.random((4, 16, 16)).astype("float32")
    histories = {}

    spss = models.build_spss(models.build_unet(CLASSES, base_filters=2), smoothness={"weight": 0.1, "sigma": 15.0})
    spss.compile(optimizer="adam", loss=losses.ProportionLoss("mse+kl"), jit_compile=True)
    histories["spss"] = _history(spss, images, proportions)

    pixel = models.build_unet(CLASSES, base_filters=2, activation=None)
    pixel.compile(optimizer="adam", loss=losses.PixelCrossEntropy(from_logits=True),
                  metrics=[metrics.MeanIoU(CLASSES, from_logits=True)], jit_compile=True)
    histories["pixel"] = _history(pixel, images, labels, sample_weight=weight)

    plus = models.build_spss_plus(models.build_unet(1, base_filters=2))
    plus.compile(optimizer="adam", loss={"proportions": losses.ProportionLoss(), "class_maps": losses.KeypointLoss()},
                 loss_weights={"proportions": 0.5, "class_maps": 0.5}, jit_compile=True)
    histories["spss_plus"] = _history(plus, images, {"proportions": proportions[:, 1:2], "class_maps": keypoints})

    edge_net = layers.SemedaNet(CLASSES)
    for name, loss in (("sobel", losses.SobelEdgeLoss()), ("semeda", losses.SemedaLoss(edge_net))):
        model = models.build_unet(CLASSES, base_filters=2)
        model.compile(optimizer="adam", loss=loss, jit_compile=True)
        histories[name] = _history(model, images, labels)
    return {check: {key: [float(v) for v in values] for key, values in history.items()} for check, history in histories.items()}


if __name__ == "__main__":
    inputs, forward_out, fits_out = sys.argv[1:4]
    with np.load(inputs) as data:
        np.savez(forward_out, **forward(dict(data)))
    with open(fits_out, "w", encoding="utf-8") as out:
        json.dump({"backend": keras.backend.backend(), "fits": fit_checks()}, out)
