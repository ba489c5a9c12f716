"""Shared timing for the benchmarks: median training-step times of several models, steps interleaved."""

import time

import numpy as np


def random_proportion_batch(batch, num_classes, size=224, seed=0):
    """(images, proportions): `batch` random size² RGB images (0-255, float32) and Dirichlet proportions, fixed by `seed`.

    Every variant a benchmark times trains on the same batch; random content costs the same as real patches.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, size, size, 3)).astype("float32")
    return images, rng.dirichlet(np.ones(num_classes), batch).astype("float32")


def interleaved_step_medians(runs, images, steps):
    """{name: median seconds of `model.train_on_batch(images, target)`} for runs = {name: (model, target)}.

    One step of each model in turn, `steps` rounds, so machine load affects every model alike.
    Call each model once beforehand to trace and warm it up.
    """
    times = {name: [] for name in runs}
    for _ in range(steps):
        for name, (model, target) in runs.items():
            start = time.perf_counter()
            model.train_on_batch(images, target)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def interleaved_call_medians(calls, steps):
    """{name: median seconds of a call} for calls = {name: traced function returning tensors}, calls interleaved.

    Each call's outputs are read back (`.numpy()`), so the time includes the work, not just its dispatch.
    """
    times = {name: [] for name in calls}
    for _ in range(steps):
        for name, call in calls.items():
            start = time.perf_counter()
            [value.numpy() for value in call()]
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def traced_loss_gradient(loss_fn, target, logits, policy="float32"):
    """A traced call returning the batch-mean loss_fn(target, softmax(logits)) and its gradient with respect to the
    logits (a tf.Variable), traced (and run once) under the Keras dtype `policy`; for interleaved_call_medians."""
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(policy)

    @tf.function
    def call():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(target, tf.nn.softmax(logits)))
        return loss, tape.gradient(loss, logits)

    call()
    keras.mixed_precision.set_global_policy("float32")
    return call
