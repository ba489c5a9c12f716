"""Method "spss_plus": proportions plus a few semantic keypoints, loss α·L_sp + (1 − α)·L_sk (paper eq. 4).

The keypoints are the user's (--keypoints, PatchSet.keypoints) or sampled from
the masks with the recipe's [keypoints] settings. Of spss's signals beyond eq. 1
it takes the interval loss, the proportion-matching pseudo-labels and entropy
minimisation (the keypoints already use the "class_maps" output that spss's
absent/present class penalties read).
"""

from .. import losses
from ..data import keypoint_arrays, sample_keypoints
from ..errors import KerasweakError
from ..models import build_spss_plus
from ..schema import INT, NUMBER, Section, Setting, at_least, unit_interval
from .base import Method
from .spss import SIGNAL_SETTINGS, proportion_loss, ramp_steps, ramped_signal_losses, ramped_weights

SIGNALS = ("loss", "tolerance", "pseudo_label_weight", "pseudo_label_ramp_epochs", "pseudo_label_temperature",
           "entropy_weight", "entropy_ramp_epochs")  # spss's signal settings that SPSS+ takes


def _point_counts(k):
    """Problem with [keypoints] k: points per class, or a table of them by class name."""
    counts = list(k.values()) if isinstance(k, dict) else [k]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts) or not any(counts):
        return f"must be an integer >= 1 or a table of integers >= 0 by class name, got {k!r}"
    return None


KEYPOINT_SAMPLING = {
    "k": Setting((int, dict), 3, _point_counts, "points per class, or {class name = points}"),
    "radius": Setting(INT, 0, at_least(0), "each point dilated to a (2r+1)² square of its class"),
    "classes": Setting((list,), None, doc="class names to sample points of (default: all)"),
    "fraction_of_images": Setting(NUMBER, 1.0, unit_interval, "share of training patches with points"),
    "seed": Setting(INT, 0, at_least(0), "seed of the keypoint sampling"),
}  # how keypoints are sampled from the masks when the user gives none (--keypoints)


class SpssPlus(Method):
    """SPSS+ (paper eq. 4): the proportion loss plus a keypoint loss on the class maps, weighted by α."""

    name = "spss_plus"
    train_settings = {key: SIGNAL_SETTINGS[key] for key in SIGNALS}
    sections = {"keypoints": Section({
        **KEYPOINT_SAMPLING,
        "alpha": Setting(NUMBER, 0.5, unit_interval, "α of eq. 4: the proportion loss's weight"),
    })}

    def build(self, num_outputs, recipe, channels, steps_per_epoch=1):
        return build_spss_plus(self.segmenter(num_outputs, recipe, channels), **ramp_steps(recipe, steps_per_epoch))

    def targets(self, patches, recipe):
        signals = {output: patches.proportions for output in ramped_signal_losses(recipe)}
        return {**keypoint_targets(patches, recipe), **signals}

    def loss(self, recipe):
        return {"proportions": proportion_loss(recipe), "class_maps": losses.KeypointLoss(), **ramped_signal_losses(recipe)}

    def loss_weights(self, recipe):
        alpha = recipe["keypoints"]["alpha"]
        return {"proportions": alpha, "class_maps": 1.0 - alpha, **ramped_weights(recipe)}


def class_indices(names, patches, key, recipe):
    """Indices in patches.class_names of the class names a [keypoints] `key` lists; an unknown name is a one-line error."""
    unknown = [c for c in names if c not in patches.class_names]
    if unknown:
        raise KerasweakError(f"[keypoints] {key}: unknown {', '.join(unknown)}; known: {', '.join(patches.class_names)}",
                             recipe["name"])
    return [patches.class_names.index(c) for c in names]


def keypoint_targets(patches, recipe):
    """Proportions plus keypoints (eq. 4's two targets)."""
    return {"proportions": patches.proportions, "class_maps": keypoint_maps(patches, recipe)}


def keypoint_maps(patches, recipe):
    """The KeypointLoss target: the user's keypoints (PatchSet.keypoints), else sampled from the masks by [keypoints]."""
    if patches.keypoints is not None:
        keypoints = keypoint_arrays(patches.keypoints, patches.images.shape[1:3], patches.proportions.shape[1])
        return losses.pack_keypoints(*keypoints)
    s = recipe["keypoints"]
    classes = None if s["classes"] is None else class_indices(s["classes"], patches, "classes", recipe)
    k = s["k"]
    if isinstance(k, dict):
        k = dict(zip(class_indices(k, patches, "k", recipe), k.values()))
    keypoints = sample_keypoints(patches.masks, patches.proportions.shape[1], k, radius=s["radius"], classes=classes,
                                 fraction_of_images=s["fraction_of_images"], seed=s["seed"])
    return losses.pack_keypoints(*keypoints)
