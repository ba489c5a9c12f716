"""Learning to segment from object sizes (Baručić and Kybic, ITAT 2022): a `train_step` with a sampled size gradient.

Targets are one dict per batch, so a batch may mix pixel-annotated and
size-annotated images:

    (images, {"mask": (B, H, W) 0/1, "size": (B,), "mask_weight": (B,), "size_weight": (B,)})

Each image's loss is mask_weight · BCE-with-logits (eq. 6, summed over its
pixels as the paper writes it) plus size_weight · the expected squared size error
E_Y[l(s, g(Y))] (eq. 10), whose gradient is sampled (eq. 21). Both are per-image
sums over pixels, so neither term is scaled down by the image size. An image with only a size gets
mask_weight 0 and any mask (zeros); one with only a mask gets size_weight 0.
Weights may be any non-negative numbers, so they also balance the two terms.

Under a tf.distribute strategy each replica trains on its rows of the global
batch: the objective is divided by the global batch size (the replicas' gradients
are summed), and each replica keeps its rows of noise drawn for the whole global
batch, so replicas get independent noise and the step equals one device's.
"""

import keras
import tensorflow as tf

from ..errors import KerasweakError
from ..ops import flipped_object_sizes, object_size


def sampled_size_gradient(logits, sizes, num_samples, seed=None, rows=None):
    """(B, H, W): the mean of `num_samples` single-sample estimates (eq. 21) of ∂E_Y[l(s, g(Y))] / ∂F_Z(a_i).

    Y_i = sign(a_i - Z) with logistic noise Z (eq. 8-11), so Pr(Y_i = +1) = σ(a_i);
    each sample y gives y_i [l(s, g(y)) - l(s, g(y↓i))] with l the squared error
    (eq. 7), all V flips g(y↓i) at once from `flipped_object_sizes`.
    `rows` = (first row, global batch size): draw noise for the global batch and keep
    these B rows (one replica's share); default (0, B).
    """
    logits = tf.cast(logits, tf.float32)
    height, width = logits.shape[1], logits.shape[2]
    first, global_batch = rows if rows is not None else (0, tf.shape(logits)[0])
    shape = tf.concat([[num_samples, global_batch], tf.shape(logits)[1:]], axis=0)
    uniform = keras.random.uniform(shape, seed=seed)[:, first:first + tf.shape(logits)[0]]
    noise = tf.math.log(uniform) - tf.math.log1p(-uniform)  # logistic(0, 1): F_Z = σ
    samples = logits[None] > noise  # (n, B, H, W), True where y_i = +1
    flat = tf.reshape(samples, [-1, height, width])
    size = tf.cast(tf.reshape(object_size(flat), tf.shape(samples)[:2]), tf.float32)[..., None, None]
    flipped = tf.cast(tf.reshape(flipped_object_sizes(flat), tf.shape(samples)), tf.float32)
    target = tf.cast(sizes, tf.float32)[None, :, None, None]
    sign = tf.where(samples, 1.0, -1.0)
    return tf.reduce_mean(sign * (tf.square(target - size) - tf.square(target - flipped)), axis=0)


def _unpack(targets):
    """float32 mask (B, H, W), size, mask_weight, size_weight from the target dict."""
    mask = tf.cast(targets["mask"], tf.float32)
    if mask.shape.rank == 4:
        mask = mask[..., 0]
    return mask, *(tf.cast(targets[key], tf.float32) for key in ("size", "mask_weight", "size_weight"))


def size_supervised_objective(logits, targets, num_samples, seed=None, rows=None):
    """Scalar to differentiate: batch mean of mask_weight · Σ_i BCE_i (eq. 6) + size_weight · Σ_i ĝ_i σ(a_i).

    ĝ = sampled_size_gradient is held constant, so the gradient with respect to
    the logits a_i is size_weight · ĝ_i σ'(a_i): eq. 21 chained through σ.
    `rows` = (first row, global batch size) of a replica's share: the sum over its
    images divided by the global batch size, its part of the global batch mean.
    """
    logits = tf.cast(logits, tf.float32)[..., 0]
    mask, size, mask_weight, size_weight = _unpack(targets)
    bce = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=mask, logits=logits), axis=[1, 2])
    gradient = tf.stop_gradient(sampled_size_gradient(logits, size, num_samples, seed, rows))
    surrogate = tf.reduce_sum(gradient * tf.sigmoid(logits), axis=[1, 2])
    global_batch = rows[1] if rows is not None else tf.shape(logits)[0]
    return tf.reduce_sum(mask_weight * bce + size_weight * surrogate) / tf.cast(global_batch, tf.float32)


def replica_rows(batch_size):
    """(first row, global batch size) of this replica's share of the global batch; (0, batch_size) on one device."""
    context = tf.distribute.get_replica_context()
    sizes = context.all_gather(tf.reshape(batch_size, [1]), axis=0)
    return tf.reduce_sum(sizes[:context.replica_id_in_sync_group]), tf.reduce_sum(sizes)


@keras.saving.register_keras_serializable(package="kerasweak")
class SizeSupervisedSegmenter(keras.Model):
    """A one-output segmentation backbone trained from masks and object sizes (see the module docstring).

    Calling it gives the backbone's probabilities, so it predicts and exports like
    the other models. Training reads the logits of the backbone's "class_logits"
    layer (as `build_unet` names it) rather than inverting the float32 sigmoid,
    which saturates. `num_samples` is n, the samples averaged per step (paper: 1).
    Training and validation report, weighted per image: `loss` (mask_weight · mean BCE +
    size_weight · E of the thresholded prediction), `mask_loss` (BCE per pixel), `size_error`
    (E = (s - g(ŷ))², eq. 22, weighted by size_weight) and `iou` (eq. 23, weighted
    by mask_weight). EarlyStopping can monitor "val_size_error" as the paper does;
    give it mode="min", since Keras infers directions only for compiled metrics.
    The metrics are Keras Means, summed over replicas when read, so under a
    tf.distribute strategy the epoch figures are those of the whole batch.
    """

    def __init__(self, backbone, num_samples=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_samples) < 1:
            raise KerasweakError(f"num_samples must be at least 1, got {num_samples}", self.name)
        try:
            logits = backbone.get_layer("class_logits").output
        except ValueError:
            raise KerasweakError("the backbone has no 'class_logits' layer to read logits from", backbone.name) from None
        if logits.shape[-1] != 1:
            raise KerasweakError(f"size supervision needs one sigmoid output, the backbone has {logits.shape[-1]}", backbone.name)
        self.backbone = backbone
        self.num_samples = int(num_samples)
        self.seed = seed
        self.logits_model = keras.Model(backbone.inputs, logits, name=f"{backbone.name}_logits")  # shares the weights
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "mask_loss", "size_error", "iou")}
        self.build(backbone.input_shape)  # records the input shape for saving and export; fit never calls the model itself

    def call(self, inputs, training=False):
        return self.backbone(inputs, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        images, targets = data[0], data[1]
        with tf.GradientTape() as tape:
            logits = self.logits_model(images, training=True)
            objective = size_supervised_objective(logits, targets, self.num_samples, self.seed_generator,
                                                  replica_rows(tf.shape(images)[0]))
            scaled = self.optimizer.scale_loss(objective)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return self._report(logits, targets)

    def test_step(self, data):
        images, targets = data[0], data[1]
        return self._report(self.logits_model(images, training=False), targets)

    def _report(self, logits, targets):
        """Update and return the metrics from the thresholded prediction ŷ = [a > 0] (eq. 2)."""
        logits = tf.cast(logits, tf.float32)[..., 0]
        mask, size, mask_weight, size_weight = _unpack(targets)
        predicted = tf.cast(logits > 0, tf.float32)
        bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=mask, logits=logits), axis=[1, 2])
        error = tf.square(size - tf.cast(object_size(predicted), tf.float32))
        intersection = tf.reduce_sum(mask * predicted, axis=[1, 2])
        union = tf.reduce_sum(tf.maximum(mask, predicted), axis=[1, 2])
        iou = tf.where(union > 0, intersection / tf.maximum(union, 1.0), 1.0)  # both empty: perfect
        values = {"loss": (mask_weight * bce + size_weight * error, None), "mask_loss": (bce, mask_weight),
                  "size_error": (error, size_weight), "iou": (iou, mask_weight)}
        for name, (value, weight) in values.items():
            self.trackers[name].update_state(value, sample_weight=weight)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        return {**super().get_config(), "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_samples": self.num_samples, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"))
        return cls(backbone, **config)
