"""`import kerasweak` registers every custom object (issue 30, point 3): checked in fresh Python processes."""

import json
import os
import subprocess
import sys

import keras
import pytest

from kerasweak import layers, losses, metrics, models, proportion_losses, schedules

# Every class kerasweak registers, and a .keras file holding it (in its architecture or in its compiled loss/metric).
CUSTOM_OBJECTS = ("ProportionHead", "EdgeAwareSmoothness", "SemedaNet", "ProportionLoss", "PixelCrossEntropy",
                  "KeypointLoss", "SemedaLoss", "SobelEdgeLoss", "MeanIoU", "SizeSupervisedSegmenter", "GradientRamp",
                  "IntervalProportionLoss", "PseudoLabelLoss", "ClassPresenceLoss", "EntropyLoss", "WarmupCosine",
                  "ReflectPadding2D", "CoarseStart")


def _unet(classes=2, **kwargs):
    return models.build_unet(classes, base_filters=2, **kwargs)


def _files(folder):
    """{file name: the custom objects it holds}, each a compiled model saved as .keras."""
    spss = models.build_spss(_unet(), smoothness={"weight": 0.1, "sigma": 15.0})
    spss.compile(optimizer="adam", loss=losses.ProportionLoss("kl"))
    pixel = _unet(3, activation=None)
    pixel.compile(optimizer="adam", loss=losses.PixelCrossEntropy(from_logits=True), metrics=[metrics.MeanIoU(3)])
    keypoints = models.build_spss_plus(_unet(1))
    keypoints.compile(optimizer="adam", loss={"proportions": losses.ProportionLoss(), "class_maps": losses.KeypointLoss()})
    semeda = _unet(3)
    semeda.compile(optimizer="adam", loss=losses.SemedaLoss(layers.SemedaNet(3)))
    sobel = _unet(3)
    sobel.compile(optimizer=keras.optimizers.Adam(schedules.WarmupCosine(1e-3, 100, warmup_steps=10)),
                  loss=losses.SobelEdgeLoss())
    signals = models.build_spss_signals(_unet(), presence=True, pseudo_label_ramp_steps=10, entropy_ramp_steps=5)
    signals.compile(optimizer="adam", loss={"proportions": proportion_losses.IntervalProportionLoss(),
                                            "class_maps": proportion_losses.ClassPresenceLoss(),
                                            "pseudo_label_maps": proportion_losses.PseudoLabelLoss(),
                                            "entropy_maps": proportion_losses.EntropyLoss()})
    coarse = models.build_spss(_unet(padding="reflect"), coarse={"factor": 2, "steps": 3})
    coarse.compile(optimizer="adam", loss=losses.ProportionLoss())
    sizes = models.SizeSupervisedSegmenter(_unet(1))
    sizes.compile(optimizer="adam")
    saved = {"spss.keras": (spss, ("ProportionHead", "EdgeAwareSmoothness", "ProportionLoss")),
             "pixel.keras": (pixel, ("PixelCrossEntropy", "MeanIoU")),
             "spss_plus.keras": (keypoints, ("ProportionHead", "KeypointLoss")),
             "semeda.keras": (semeda, ("SemedaLoss", "SemedaNet")),
             "sobel.keras": (sobel, ("SobelEdgeLoss", "WarmupCosine")),
             "spss_signals.keras": (signals, ("ProportionHead", "GradientRamp", "IntervalProportionLoss", "ClassPresenceLoss",
                                              "PseudoLabelLoss", "EntropyLoss")),
             "spss_coarse_reflect.keras": (coarse, ("ProportionHead", "CoarseStart", "ReflectPadding2D")),
             "sizes.keras": (sizes, ("SizeSupervisedSegmenter",))}
    for name, (model, _) in saved.items():
        model.save(folder / name)
    return {name: held for name, (_, held) in saved.items()}


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_files")
    return folder, _files(folder)


LOAD_ALL = """
import json, sys
{imports}
loaded = {{}}
for path in sys.argv[1:]:
    model = keras.saving.load_model(path)
    loss = model.loss
    objects = [type(layer).__name__ for layer in model._flatten_layers()] + [type(model).__name__]
    objects += [type(obj).__name__ for obj in (loss.values() if isinstance(loss, dict) else [loss]) if obj is not None]
    objects += [type(keras.saving.deserialize_keras_object(m)).__name__ for m in model.get_compile_config()["metrics"] or []]
    objects += [type(loss.edge_net).__name__] if hasattr(loss, "edge_net") else []
    objects += [type(model.optimizer._learning_rate).__name__] if model.optimizer is not None else []
    loaded[path] = objects
print(json.dumps(loaded))
"""


@pytest.mark.slow
@pytest.mark.parametrize("imports", ["import kerasweak\nimport keras", "import keras\nimport kerasweak",
                                     "import kerasweak\nimport tensorflow\nimport keras"],
                         ids=["kerasweak-then-keras", "keras-then-kerasweak", "kerasweak-then-tensorflow"])
def test_every_custom_object_loads_after_only_import_kerasweak(keras_files, imports):
    folder, held = keras_files
    paths = [str(folder / name) for name in held]
    result = subprocess.run([sys.executable, "-c", LOAD_ALL.format(imports=imports), *paths], capture_output=True,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.splitlines()[-1])
    for name, objects in held.items():
        assert set(objects) <= set(loaded[str(folder / name)]), (name, loaded[str(folder / name)])
    assert {obj for objects in held.values() for obj in objects} == set(CUSTOM_OBJECTS)


def test_the_list_above_is_every_class_kerasweak_registers():
    registered = {name.split(">", 1)[1] for name in keras.saving.get_custom_objects() if name.startswith("kerasweak>")}
    assert registered == set(CUSTOM_OBJECTS)


def test_import_kerasweak_alone_starts_neither_keras_nor_tensorflow():
    code = "import sys, kerasweak; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
