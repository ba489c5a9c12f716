"""`load_folder(DIR)`: a generic dataset folder as a tf.data stream for a plain `model.fit`, decoded lazily.

    folder = kerasweak.data.load_folder("my-data")
    model.fit(folder.tf_dataset("train", "spss", batch_size=8, patch_size=224),
              validation_data=folder.tf_dataset("val", "spss", batch_size=8, patch_size=224))

Images are decoded one at a time as the stream needs them and cut into
patches as kerasweak.data.folder cuts them (at native scale with masks;
images without masks are one patch each, the whole image fitted to it), so
memory holds one image, a shuffle buffer of patches and the batches in flight,
whatever the folder's size. The split is the folder's, by image.
"""

import numpy as np

from ..errors import KerasweakError
from .dataset import IGNORE_LABEL
from .folder import cut_image, patch_points, image_parts, read_labels
from .folder_files import image_shape
from .keypoints import keypoint_arrays, sample_keypoints
from .patching import patch_shape
from .proportions import proportions_from_masks

STREAM_METHODS = ("pixel", "semeda", "sobel", "spss", "spss_plus")
SHUFFLE_PATCHES = 256


class Folder:
    """A generic dataset folder: class_names, colours, num_outputs, the split by image, and `tf_dataset`."""

    def __init__(self, root, test_fraction=0.2, val_fraction=0.1, split_seed=0):
        self.labels = read_labels(root)
        self.spec = self.labels.spec
        self.class_names = list(self.spec.classes)
        self.colours = self.spec.colours
        self.num_outputs = 1 if self.spec.binary else len(self.class_names)
        self.parts = image_parts(self.labels, {"test_fraction": test_fraction, "val_fraction": val_fraction,
                                               "split_seed": split_seed})
        self.warnings = self.labels.warnings

    def images(self, split):
        """The image names of a split part ("train", "val", "test"), or of all images ("all")."""
        return [name for name, part in self.parts.items() if split in ("all", part)]

    def _targets(self, method, name, patch, mask, origin, scale, shape, keypoint_seed):
        spec = self.spec
        if method in ("pixel", "semeda", "sobel"):
            if mask is None:
                raise KerasweakError(f"{method} needs masks/", self.labels.root)
            return mask.astype(np.int32)
        if mask is not None:
            proportions = proportions_from_masks(mask[None], len(spec.classes))[0]
        else:
            proportions = self.labels.proportions[name]
        proportions = proportions[1:] if spec.binary else proportions
        if method == "spss":
            return proportions.astype(np.float32)
        if self.labels.keypoints is not None:
            points = [patch_points(self.labels.keypoints.get(name, []), origin, scale, shape, spec.binary)]
            labels, weights = keypoint_arrays(points, shape, self.num_outputs)
        elif mask is not None:
            labels, weights = sample_keypoints(mask[None], self.num_outputs, 3, seed=keypoint_seed)
        else:
            raise KerasweakError("spss_plus needs keypoints.csv, or masks to sample keypoints from", self.labels.root)
        return {"proportions": proportions.astype(np.float32),
                "class_maps": np.concatenate([labels[0], weights[0]], axis=-1).astype(np.uint8)}

    def patches(self, split, method, patch_size, shuffle=False, seed=0, epoch=0):
        """Yield (float32 patch, target) of a split part's images, in a (seed, epoch) order when shuffled."""
        method = method.replace("-", "_")
        if method not in STREAM_METHODS:
            raise KerasweakError(f"tf_dataset streams the targets of {', '.join(STREAM_METHODS)}, not {method}; "
                                 "`kerasweak train` runs every method")
        shape = patch_shape(patch_size)
        names = self.images(split)
        if shuffle:
            names = [names[i] for i in np.random.default_rng([seed, epoch]).permutation(len(names))]
        for k, name in enumerate(names):
            for i, (patch, mask, origin, scale) in enumerate(cut_image(self.labels, name, shape)[0]):
                yield patch.astype(np.float32), self._targets(method, name, patch, mask, origin, scale, shape,
                                                              keypoint_seed=hash((seed, k, i)) % 2**31)

    def tf_dataset(self, split, method, batch_size=16, patch_size=224, shuffle=None, seed=0):
        """A tf.data.Dataset of (raw-pixel float32 patches, the method's targets) batches, for `model.fit`.

        method: pixel, semeda, sobel (class-index masks, IGNORE_LABEL unlabelled),
        spss (proportions) or spss_plus ({"proportions", "class_maps"} with
        packed keypoints, the user's or 3 per class sampled from the masks).
        shuffle (default: for "train") reorders the images every epoch and the
        patches within a buffer of SHUFFLE_PATCHES.
        """
        import tensorflow as tf

        shuffle = split == "train" if shuffle is None else shuffle
        shape = patch_shape(patch_size)
        first = next(self.patches(split, method, patch_size), None)
        if first is None:
            raise KerasweakError(f"no {split} images", self.labels.root / "images")
        spec_of = lambda value: tf.TensorSpec(np.shape(value), tf.as_dtype(np.asarray(value).dtype))  # noqa: E731
        signature = (tf.TensorSpec((*shape, self.spec.channels), tf.float32), tf.nest.map_structure(spec_of, first[1]))
        epochs = iter(range(2**31))
        data = tf.data.Dataset.from_generator(
            lambda: self.patches(split, method, patch_size, shuffle, seed, next(epochs)), output_signature=signature)
        data = data.apply(tf.data.experimental.assert_cardinality(self.count(split, patch_size)))
        if shuffle:
            data = data.shuffle(SHUFFLE_PATCHES, seed=seed)
        return data.batch(batch_size).prefetch(2)

    def count(self, split, patch_size):
        """Patches of a split part, from the image headers (nothing decoded)."""
        height, width = patch_shape(patch_size)
        if self.labels.masks is None:
            return len(self.images(split))
        shapes = [image_shape(self.labels.images[name]) for name in self.images(split)]
        return sum((h // height) * (w // width) for h, w in shapes)


def load_folder(root, test_fraction=0.2, val_fraction=0.1, split_seed=0):
    """The generic dataset folder DIR (kerasweak.data.folder) as a Folder; a problem is one KerasweakError."""
    return Folder(root, test_fraction, val_fraction, split_seed)


__all__ = ["Folder", "load_folder", "IGNORE_LABEL"]
