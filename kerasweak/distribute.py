"""Training on several devices or machines: the tf.distribute strategy a recipe runs under (`--strategy`).

The recipe's `batch_size` is the global batch: Keras splits each batch across
the replicas and sums their gradients, so one step sees as many images as on
one device. Models are built and compiled inside `strategy.scope()` (see
kerasweak.runner.run_recipe), so their variables are mirrored on every replica.
"""

import functools
import json
import os

import tensorflow as tf

from .errors import KerasweakError

STRATEGIES = ("none", "mirrored", "multiworker")


def distribution_strategy(name=None):
    """The tf.distribute strategy called `name` (a strategy object is returned as it is).

    "none" (or None): the default strategy, one device. "mirrored": MirroredStrategy
    over all local GPUs, or all visible CPU devices if there is no GPU.
    "multiworker": MultiWorkerMirroredStrategy over the cluster in $TF_CONFIG
    (every worker runs the same command with its own task index).
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    if name in (None, "none"):
        return tf.distribute.get_strategy()
    if name not in STRATEGIES:
        raise KerasweakError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    if name == "multiworker":
        check_tf_config(os.environ.get("TF_CONFIG"))
    return _process_strategy(name)


@functools.cache
def _process_strategy(name):
    """One strategy object per name and process: two MirroredStrategy objects in one process can mix up their
    collective ops ("Shape mismatch in the collective instance"), and a MultiWorkerMirroredStrategy can only be made once."""
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return NestedReduceMultiWorkerStrategy()


class NestedReduceMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` takes what Keras 3's `fit` gives it (keras-team/keras#20585).

    `fit` reduces a whole (images, targets) batch in one call, which the stock
    strategy refuses ("Attempt to convert a value (PerReplica...) to a Tensor"),
    and each step's scalar logs along axis 0, which scalars lack: here each part of
    a structure is reduced on its own, a scalar across the replicas only.
    """

    def reduce(self, reduce_op, value, axis=None):
        def reduce_part(part):
            scalar = self.experimental_local_results(part)[0].shape.rank == 0
            return super(NestedReduceMultiWorkerStrategy, self).reduce(reduce_op, part, None if scalar else axis)

        return tf.nest.map_structure(reduce_part, value)


def check_tf_config(text):
    """Refuse a missing or malformed $TF_CONFIG: a JSON cluster with workers and this worker's task."""
    if not text:
        raise KerasweakError("--strategy multiworker needs $TF_CONFIG (the cluster's workers and this worker's index)")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        valid = bool(cluster.get("worker")) and 0 <= int(task["index"]) < len(cluster[task["type"]])
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise KerasweakError('TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, '
                             '"task": {"type": "worker", "index": I}}, got ' + repr(text))
