import keras
import numpy as np
import pytest

from kerasweak import losses
from kerasweak.data import synthetic_patches
from kerasweak.layers import SemedaNet
from kerasweak.models import build_unet, load_or_train_semeda, train_semeda
from kerasweak.ops import semantic_edges


def _edge_net(num_classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    net = SemedaNet(num_classes)
    net.build((None, None, None, num_classes))
    net.trainable = False
    return net


def _numpy_embeddings(net, maps):
    """g_φ by hand: 3×3 convolutions on edge-replicated inputs, ReLU, ReLU, softmax."""
    x, out = maps.astype(np.float64), []
    for conv, activation in zip(net.convs, SemedaNet.ACTIVATIONS):
        kernel, bias = (w.astype(np.float64) for w in conv.get_weights())
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        height, width = x.shape[1:3]
        x = bias + sum(padded[:, dy:dy + height, dx:dx + width] @ kernel[dy, dx] for dy in range(3) for dx in range(3))
        if activation == "relu":
            x = np.maximum(x, 0)
        else:
            x = np.exp(x - x.max(-1, keepdims=True))
            x /= x.sum(-1, keepdims=True)
        out.append(x)
    return out


def _fixture(seed=1, num_classes=3):
    rng = np.random.default_rng(seed)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(2, 6, 7, num_classes)).astype("float32")))
    labels = rng.integers(0, num_classes, (2, 6, 7))
    labels[0, 0, :3] = 255
    return labels, probs


def test_semeda_net_shapes_and_replicate_border():
    net = _edge_net()
    maps = np.zeros((1, 5, 6, 3), "float32")
    maps[..., 1] = 1.0  # one class everywhere: the border must look like the inside
    embeddings = net(maps, return_embeddings=True)
    assert [tuple(e.shape) for e in embeddings] == [(1, 5, 6, 16), (1, 5, 6, 32), (1, 5, 6, 2)]
    for e in embeddings:
        np.testing.assert_allclose(e, np.broadcast_to(np.asarray(e)[:, 2:3, 2:3], e.shape), atol=1e-6)
    np.testing.assert_allclose(np.sum(net(maps), axis=-1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_frozen_semeda_net_survives_a_keras_round_trip_and_fit(tmp_path):
    keras.utils.set_random_seed(0)
    patches = synthetic_patches(n=4, size=16, num_classes=3)
    inputs = keras.Input((16, 16, 3))
    class_maps = build_unet(3, base_filters=2)(inputs)
    edges = _edge_net()(class_maps)
    model = keras.Model(inputs, {"class_maps": class_maps, "edges": edges})
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    net = next(layer for layer in loaded.layers if isinstance(layer, SemedaNet))
    assert net.trainable is False and not any(w.trainable for w in net.weights)
    before = [w.copy() for w in net.get_weights()]
    unet_before = loaded.get_layer("unet").get_weights()[0].copy()
    loaded.compile(optimizer=keras.optimizers.Adam(1e-2), loss={"class_maps": losses.PixelCrossEntropy(),
                                                                 "edges": losses.PixelCrossEntropy()})
    edge_target = np.random.default_rng(0).integers(0, 2, (4, 16, 16))  # a loss that would move g_φ if it could
    loaded.fit(patches.images, {"class_maps": patches.masks, "edges": edge_target}, epochs=1, batch_size=2, verbose=0)
    for old, new in zip(before, net.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(unet_before, loaded.get_layer("unet").get_weights()[0])


def test_train_semeda_returns_a_frozen_net_and_the_cache_reloads_it(tmp_path, monkeypatch):
    masks = synthetic_patches(n=8, size=16, num_classes=3).masks
    net = load_or_train_semeda(tmp_path, "synthetic", 3, masks, epochs=1, batch_size=4)
    assert net.trainable is False and (tmp_path / "semeda-synthetic-3classes.keras").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["semeda-synthetic-3classes.keras"]

    def no_training(*args, **kwargs):
        raise AssertionError("a cached net must not be retrained")

    monkeypatch.setattr("kerasweak.models.semeda.train_semeda", no_training)
    cached = load_or_train_semeda(tmp_path, "synthetic", 3, masks)
    assert isinstance(cached, SemedaNet) and cached.trainable is False
    for old, new in zip(net.get_weights(), cached.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_train_semeda_learns_from_the_edge_target():
    keras.utils.set_random_seed(0)
    masks = synthetic_patches(n=8, size=16, num_classes=3).masks
    target = losses.one_hot_labels(masks, 3)
    edges = semantic_edges(masks)
    untrained = float(losses.PixelCrossEntropy()(edges, SemedaNet(3)(target)))
    keras.utils.set_random_seed(0)
    trained = float(losses.PixelCrossEntropy()(edges, train_semeda(masks, 3, epochs=2, batch_size=2, learning_rate=1e-2)(target)))
    assert trained < untrained


def test_semeda_loss_matches_a_numpy_transcription():
    net = _edge_net()
    labels, probs = _fixture()
    lambdas = (1.0, 0.5, 0.25)
    valid = (labels != 255)[..., None]
    target = np.eye(3)[np.where(valid[..., 0], labels, 0)] * valid
    edge_term = sum(lam * np.abs(a - b).mean(axis=(1, 2, 3))
                    for lam, a, b in zip(lambdas, _numpy_embeddings(net, probs * valid), _numpy_embeddings(net, target)))
    expected = np.asarray(losses.pixel_cross_entropy(labels, probs)) + edge_term
    np.testing.assert_allclose(losses.semeda_loss(labels, probs, net, lambdas), expected, rtol=1e-5)
    assert float(losses.SemedaLoss(net, lambdas)(labels, probs)) == pytest.approx(expected.mean(), rel=1e-5)


def _reference_semeda_loss(labels, probs, net, lambdas):
    """Eq. 6 the straightforward way: all L layers, through the convolution layers, one pass per map, every λ summed."""
    valid = (labels != 255)[..., None]
    target = (np.eye(probs.shape[-1])[np.where(valid[..., 0], labels, 0)] * valid).astype("float32")

    def embeddings(maps):
        x, out = keras.ops.convert_to_tensor(maps), []
        for conv in net.convs:
            x = conv(keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric"))
            out.append(keras.ops.convert_to_numpy(x))
        return out

    edge_term = sum(lam * np.abs(a - b).mean(axis=(1, 2, 3))
                    for lam, a, b in zip(lambdas, embeddings(probs * valid), embeddings(target)))
    return np.asarray(losses.pixel_cross_entropy(labels, probs)) + edge_term


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("lambdas", [(4.0, 2.0, 0.0), (1.0, 0.5, 0.25), (0.0, 3.0, 0.0), (0.0, 0.0, 2.0)])
def test_semeda_loss_matches_the_reference_with_all_layers_and_separate_passes(lambdas):
    net = _edge_net(num_classes=5, seed=3)
    rng = np.random.default_rng(4)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(3, 12, 10, 5)).astype("float32")))
    labels = rng.integers(0, 5, (3, 12, 10))
    labels[1, 4:7, 2:9] = 255
    expected = _reference_semeda_loss(labels, probs, net, lambdas)
    np.testing.assert_allclose(losses.semeda_loss(labels, probs, net, lambdas), expected, rtol=1e-5)
    assert float(losses.SemedaLoss(net, lambdas)(labels, probs)) == pytest.approx(expected.mean(), rel=1e-5)


def test_semeda_loss_runs_the_edge_net_in_bfloat16_under_mixed_precision(mixed_bfloat16):
    net = _edge_net(num_classes=5, seed=3)
    rng = np.random.default_rng(5)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(3, 12, 10, 5)).astype("float32")))
    labels = rng.integers(0, 5, (3, 12, 10))
    lambdas = (4.0, 2.0, 1.0)
    expected = _reference_semeda_loss(labels, probs, net, lambdas)  # the conv layers keep their float32 policy
    loss = losses.semeda_loss(labels, probs, net, lambdas)
    assert loss.dtype == "float32"
    np.testing.assert_allclose(loss, expected, rtol=1e-3)
    one_hot = np.eye(5, dtype="float32")[labels]  # a perfect prediction still costs only its cross-entropy
    np.testing.assert_allclose(losses.semeda_loss(labels, one_hot, net, lambdas), losses.pixel_cross_entropy(labels, one_hot), atol=1e-7)


def test_semeda_loss_reduces_to_cross_entropy():
    net = _edge_net()
    labels, probs = _fixture()
    ce = float(losses.PixelCrossEntropy()(labels, probs))
    assert float(losses.SemedaLoss(net, lambdas=(0, 0, 0))(labels, probs)) == ce
    one_hot = np.eye(3, dtype="float32")[np.where(labels == 255, 0, labels)]  # the prediction is the target
    assert float(losses.SemedaLoss(net)(labels, one_hot)) == pytest.approx(float(losses.PixelCrossEntropy()(labels, one_hot)), abs=1e-7)
    assert float(losses.SobelEdgeLoss()(labels, one_hot)) == pytest.approx(float(losses.PixelCrossEntropy()(labels, one_hot)), abs=1e-7)


def test_sigmoid_map_is_compared_as_two_classes():
    net = _edge_net(num_classes=2)
    rng = np.random.default_rng(2)
    p = rng.random((2, 5, 5, 1)).astype("float32")
    labels = rng.integers(0, 2, (2, 5, 5))
    two_class = np.concatenate([1 - p, p], axis=-1)
    np.testing.assert_allclose(losses.semeda_loss(labels, p, net), losses.semeda_loss(labels, two_class, net), rtol=1e-5)
    np.testing.assert_allclose(losses.sobel_edge_loss(labels, p), losses.sobel_edge_loss(labels, two_class), rtol=1e-5)


def test_sobel_edge_loss_matches_a_hand_computed_value():
    # class maps flat at 0.5, truth split down the middle: each class's Sobel
    # magnitude is 4 on the two columns at the step and 0 elsewhere (4 columns)
    labels = np.repeat([[0, 0, 1, 1]], 3, axis=0)[None]
    probs = np.full((1, 3, 4, 2), 0.5, "float32")
    expected = np.log(2) + 2.0 * (4 * 6 * 2) / (3 * 4 * 2)  # CE + λ · mean |0 - magnitude|
    assert float(losses.SobelEdgeLoss(lam=2.0)(labels, probs)) == pytest.approx(expected, rel=1e-5)


def test_semeda_loss_checks_its_lambdas():
    with pytest.raises(ValueError, match="one λ per SemedaNet layer"):
        losses.SemedaLoss(_edge_net(), lambdas=(1.0, 1.0))


def test_edge_losses_serialise_with_their_edge_net():
    net = _edge_net()
    labels, probs = _fixture()
    for loss in (losses.SobelEdgeLoss(lam=0.5), losses.SemedaLoss(net, lambdas=(2, 4, 0), ignore_label=7, name="s")):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
        assert float(restored(labels, probs)) == pytest.approx(float(loss(labels, probs)), rel=1e-6)
    for old, new in zip(net.get_weights(), restored.edge_net.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.mark.slow
@pytest.mark.parametrize("make_loss", [lambda: losses.SemedaLoss(_edge_net()), lambda: losses.SobelEdgeLoss()])
def test_edge_losses_fit_a_unet_and_reload_with_the_model(tmp_path, make_loss):
    keras.utils.set_random_seed(0)
    patches = synthetic_patches(n=8, size=32, num_classes=3)
    model = build_unet(3, base_filters=2)
    model.compile(optimizer="adam", loss=make_loss())
    history = model.fit(patches.images, patches.masks, epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.evaluate(patches.images, patches.masks, verbose=0),
                               model.evaluate(patches.images, patches.masks, verbose=0), rtol=1e-5)
