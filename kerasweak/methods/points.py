"""Method "points": a segmenter trained from a few labelled points only (no proportions, no masks).

The loss is SPSS+'s keypoint term L_sk (eq. 3) alone: binary cross-entropy at
the annotated pixels of each class map. Points are the user's (--keypoints) or,
for the paper datasets, sampled from the masks by the [keypoints] settings.
"""

from .. import losses
from ..schema import Section
from .base import Method
from .spss_plus import KEYPOINT_SAMPLING, keypoint_maps


class Points(Method):
    name = "points"
    sections = {"keypoints": Section(KEYPOINT_SAMPLING)}

    def targets(self, patches, recipe):
        return keypoint_maps(patches, recipe)

    def loss(self, recipe):
        return losses.KeypointLoss()
