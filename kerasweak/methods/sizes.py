"""Method "sizes": learning to segment from object sizes (Baručić and Kybic, section 4.2), in two stages.

1. Pre-train the U-Net with BCE on m = [sizes] pixel_annotated training images
   (D_f, drawn with the seed), with random flips, until val_loss stops improving.
2. Fine-tune a SizeSupervisedSegmenter on all training images (D_f keeps its
   masks, the rest D_w only their sizes) until val_size_error stops improving.
"""

from pathlib import Path

import keras
import numpy as np

from ..data import make_dataset
from ..data.pipeline import EpochCounter
from ..errors import KerasweakError
from ..models import SizeSupervisedSegmenter
from ..precision import set_precision
from ..schema import INT, NUMBER, Section, Setting, at_least, positive
from ..training import fit_stage, make_optimizer
from .base import Method


class Sizes(Method):
    name = "sizes"
    sections = {"sizes": Section({
        "pixel_annotated": Setting(INT, 85, at_least(1), "m: training images that keep their masks"),
        "num_samples": Setting(INT, 1, at_least(1), "n: sampled size gradients per step (eq. 21)"),
        "augment": Setting((bool,), True, doc="random flips during pre-training"),
        "finetune_learning_rate": Setting(NUMBER, 1e-4, positive, "rate of the size fine-tuning"),
        "finetune_epochs": Setting(INT, 40, at_least(1), "maximum fine-tuning epochs"),
        "finetune_patience": Setting(INT, 5, at_least(1), "EarlyStopping patience on val_size_error"),
    })}

    def train(self, recipe, train, val, seed, seed_dir, verbose="auto", evaluate=None):
        """Both stages for one seed, in seed_dir/pretrain and seed_dir/finetune.

        Returns (model, seconds, extra metrics): `evaluate(model)`'s test figures
        after pre-training, prefixed "pretrain_", and each stage's epochs and time.
        """
        if train.sizes is None:
            raise KerasweakError("method sizes needs an object size per patch: binary masks, or sizes.csv with every "
                                 "image exactly one patch of [data] patch_size", recipe["name"])
        keras.utils.set_random_seed(seed)
        cfg, sizes = recipe["train"], recipe["sizes"]
        set_precision(recipe)
        seed_dir = Path(seed_dir)
        labelled = np.sort(np.random.default_rng(seed).permutation(len(train))[:min(sizes["pixel_annotated"], len(train))])
        backbone = self.segmenter(1, recipe, train.images.shape[-1])
        pre = train.subset(labelled)
        backbone.compile(optimizer=make_optimizer(recipe, len(pre), cfg["epochs"]), loss=keras.losses.BinaryCrossentropy())
        counter = EpochCounter()
        pre_data = make_dataset(pre.images, pre.masks[..., None].astype("float32"), cfg["batch_size"], shuffle=True,
                                seed=seed, augment=["flip_with_mask"] if sizes["augment"] else (), epoch=counter.epoch)
        val_masks = make_dataset(val.images, val.masks[..., None].astype("float32"), cfg["batch_size"])
        pre_seconds, pre_epochs = fit_stage(backbone, pre_data, val_masks, seed_dir / "pretrain", cfg["epochs"],
                                            cfg["patience"], verbose=verbose, callbacks=[counter], preview=val,
                                            validation_every=cfg["validation_every"])
        metrics = {f"pretrain_{key}": value for key, value in (evaluate(backbone) if evaluate else {}).items()}

        model = SizeSupervisedSegmenter(backbone, num_samples=sizes["num_samples"], seed=seed)
        model.compile(optimizer=make_optimizer(recipe, len(train), sizes["finetune_epochs"],
                                               learning_rate=sizes["finetune_learning_rate"]))
        fine_counter = EpochCounter()
        fine_data = make_dataset(train.images, size_targets(train, labelled), cfg["batch_size"], shuffle=True, seed=seed,
                                 epoch=fine_counter.epoch)
        val_data = make_dataset(val.images, size_targets(val, np.arange(len(val)), labelled_size_weight=1.0),
                                cfg["batch_size"])
        fine_seconds, fine_epochs = fit_stage(model, fine_data, val_data, seed_dir / "finetune", sizes["finetune_epochs"],
                                              sizes["finetune_patience"], monitor="val_size_error", verbose=verbose,
                                              callbacks=[fine_counter], preview=val, validation_every=cfg["validation_every"])
        metrics.update(epochs=float(pre_epochs + fine_epochs), pretrain_seconds=pre_seconds,
                       pretrain_epochs=float(pre_epochs), finetune_epochs=float(fine_epochs),
                       finetune_epoch_seconds=fine_seconds / max(fine_epochs, 1), pixel_annotated=float(len(labelled)))
        return model, pre_seconds + fine_seconds, metrics


def size_targets(patches, labelled, labelled_size_weight=0.0):
    """SizeSupervisedSegmenter targets: images at index `labelled` train on their masks (BCE), the rest on sizes only.

    The others' masks are replaced by zeros, so size supervision never sees them.
    `labelled_size_weight` = 1 also scores the labelled images' sizes (validation).
    """
    has_mask = np.zeros(len(patches), dtype=np.float32)
    has_mask[labelled] = 1.0
    masks = np.where(has_mask[:, None, None] > 0, patches.masks, 0).astype(np.float32)
    return {"mask": masks, "size": patches.sizes.astype(np.float32), "mask_weight": has_mask,
            "size_weight": np.where(has_mask > 0, labelled_size_weight, 1.0).astype(np.float32)}
