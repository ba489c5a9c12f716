"""`Method`, what every training method is: a recipe's `method` key names one subclass instance.

A method builds the training model around the shared U-Net, says which labels
of a PatchSet it trains on and with which loss, and declares its own recipe
settings (sections and [train] keys). The default `train` is one
`kerasweak.training.train_seed` fit; a method with stages overrides it.
See docs/adding-a-method.md.
"""

from ..errors import KerasweakError
from ..models import build_unet
from ..training import train_seed


class Method:
    """Base of the methods. Subclasses override the hooks they need; the rest are the single-fit defaults."""

    name = ""
    sections = {}  # {section name: schema.Section} this method's recipes may have
    train_settings = {}  # {key: schema.Setting} this method adds to [train]

    def check(self, recipe, where):
        """Cross-key checks of a normalised recipe that one key's range cannot express; raise KerasweakError."""
        if recipe["train"]["mosaic"] > 1:
            raise KerasweakError(f"[train] mosaic keeps proportion labels exact, so it needs method spss, not {self.name}", where)

    def data_warnings(self, train):
        """Lines to print before training on the PatchSet `train`: what in it this method may not learn from."""
        return []

    def warn_about(self, train, echo):
        """Print each of `data_warnings(train)` with `echo` as a "warning: ..." line, before training."""
        for warning in self.data_warnings(train):
            echo(f"warning: {warning}")

    def segmenter(self, num_outputs, recipe, channels):
        """The shared U-Net with the recipe's [model] settings."""
        model = recipe["model"]
        return build_unet(num_outputs, base_filters=model["base_filters"], channels=channels, padding=model["padding"])

    def build(self, num_outputs, recipe, channels, steps_per_epoch=1):
        """The training model (default: the segmenter itself).

        `steps_per_epoch` (train_seed passes it) turns settings counted in epochs
        into the training steps that layers count, such as a ramp's length.
        """
        return self.segmenter(num_outputs, recipe, channels)

    def targets(self, patches, recipe):
        """The training targets of a PatchSet (default: its masks as class indices)."""
        return patches.masks.astype("int32")

    def loss(self, recipe):
        """The Keras loss, or a dict of them per model output."""
        raise NotImplementedError

    def loss_weights(self, recipe):
        """Weights per model output, or None."""
        return None

    def train(self, recipe, train, val, seed, seed_dir, verbose="auto", evaluate=None):
        """Train one seed: (model, training seconds, extra metrics). `evaluate(model)` gives test figures."""
        return train_seed(self, recipe, train, val, seed, seed_dir, verbose)
