import keras
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak.layers import ProportionHead


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_proportion_head_is_the_spatial_mean(batch, height, width, classes, seed):
    maps = np.random.default_rng(seed).random((batch, height, width, classes)).astype("float32")
    np.testing.assert_allclose(ProportionHead()(maps), maps.mean(axis=(1, 2)), rtol=1e-5)


def test_proportions_of_softmax_maps_sum_to_one():
    logits = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    props = ProportionHead()(keras.ops.softmax(logits))
    np.testing.assert_allclose(np.sum(props, axis=-1), 1.0, rtol=1e-5)


def test_proportion_head_serialises():
    layer = ProportionHead(name="p")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, ProportionHead) and restored.name == "p"
