"""Three epochs of dubai-spss on a GPU, mixed_float16, XLA off and on: seconds per epoch, images per second, peak memory.

Run by benchmarks/gpu_check.sh on a machine with one NVIDIA GPU. The data
pipeline, model and loss are dubai-spss's (kerasweak.recipe); only the dtype
policy (mixed_float16, the GPU's fast type) and jit_compile change.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweak.data import make_dataset, read_patches, recipe_split  # noqa: E402
from kerasweak.methods import get_method  # noqa: E402
from kerasweak.recipe import load_recipe  # noqa: E402


def main(data, epochs=3):
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        sys.exit("no GPU visible to TensorFlow")
    recipe = load_recipe("dubai-spss")
    patches = read_patches(recipe, data)
    train_idx, _, _ = recipe_split(recipe, patches)
    train = patches.subset(train_idx)
    method, batch = get_method("spss"), recipe["train"]["batch_size"]
    keras.mixed_precision.set_global_policy("mixed_float16")
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        tf.config.experimental.reset_memory_stats("GPU:0")
        model = method.build(train.proportions.shape[1], recipe, 3)
        model.compile(keras.optimizers.Adam(1e-3), method.loss(recipe), jit_compile=jit)
        dataset = make_dataset(train.images, method.targets(train, recipe), batch, shuffle=True, seed=0)
        seconds = []
        for _ in range(epochs):
            start = time.perf_counter()
            model.fit(dataset, epochs=1, verbose=0)
            seconds.append(time.perf_counter() - start)
        steady = min(seconds[1:]) if len(seconds) > 1 else seconds[0]
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 30
        print(f"{gpus[0].name} XLA {'on ' if jit else 'off'}: epochs {', '.join(f'{s:.1f}' for s in seconds)} s; "
              f"{len(train) / steady:.0f} images/s after the first; peak GPU memory {peak:.2f} GiB "
              f"({len(train)} patches of 224², batch {batch}, mixed_float16)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
