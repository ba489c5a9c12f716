import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak.data import IGNORE_LABEL, keypoint_arrays, read_keypoints_file, read_patch_keypoints, sample_keypoints
from kerasweak.data.patching import patch_set_from_images
from kerasweak.errors import KerasweakError


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(4, 16), st.integers(1, 4), st.integers(1, 5), st.integers(0, 3), st.integers(0, 2**31 - 1))
def test_sampled_keypoints_lie_on_pixels_of_their_class(n, side, num_classes, k, radius, seed):
    classes = max(num_classes, 2)
    masks = np.random.default_rng(seed).integers(0, classes + 1, (n, side, side)).astype(np.uint8)
    masks[masks == classes] = IGNORE_LABEL
    labels, weights = sample_keypoints(masks, num_classes, k, radius=radius, seed=seed)
    assert labels.shape == weights.shape == (n, side, side, num_classes)
    annotated = weights.astype(bool)
    if num_classes == 1:  # one sigmoid channel: the label is the mask class, 0 or 1
        assert (labels[..., 0][annotated[..., 0]] == masks[annotated[..., 0]]).all()
    else:
        channel = np.broadcast_to(np.arange(num_classes), annotated.shape)
        assert (masks[..., None].repeat(num_classes, -1)[annotated] == channel[annotated]).all()
        assert (labels[annotated] == 1).all()
    assert not labels[~annotated].any()
    if radius == 0:  # k points per class, or all of a class's pixels if it has fewer
        per_class = np.stack([np.minimum((masks == c).reshape(n, -1).sum(axis=1), k) for c in range(classes)], axis=1)
        expected = per_class.sum(axis=1, keepdims=True) if num_classes == 1 else per_class
        np.testing.assert_array_equal(weights.reshape(n, -1, num_classes).sum(axis=1), expected)


def test_dilation_keeps_only_pixels_of_the_same_class():
    mask = np.zeros((1, 5, 5), np.uint8)
    mask[0, 2, 2] = 1
    labels, weights = sample_keypoints(mask, 2, k=1, radius=1, classes=[1])
    assert weights[0, ..., 1].sum() == 1 and weights[0, 2, 2, 1] == 1 and not weights[..., 0].any()
    _, weights = sample_keypoints(mask, 2, k=1, radius=4, classes=[0])
    assert weights[0, ..., 0].sum() == 24 and weights[0, 2, 2, 0] == 0


def test_classes_and_fraction_of_images_choose_where_keypoints_go():
    masks = np.tile(np.arange(3, dtype=np.uint8), (8, 6, 2))
    _, weights = sample_keypoints(masks, 3, k=2, classes=[2], fraction_of_images=0.5, seed=3)
    per_image = weights.reshape(8, -1, 3).sum(axis=1)
    assert (per_image[:, :2] == 0).all()
    assert sorted(per_image[:, 2]) == [0, 0, 0, 0, 2, 2, 2, 2]
    again = sample_keypoints(masks, 3, k=2, classes=[2], fraction_of_images=0.5, seed=3)[1]
    np.testing.assert_array_equal(weights, again)


def test_binary_class_outside_zero_and_one_is_rejected():
    with pytest.raises(ValueError, match="classes are 0 and 1"):
        sample_keypoints(np.full((1, 4, 4), 2, np.uint8), 1, k=1, classes=[2])


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


CLASSES = ["sky", "tree", "road"]


def test_csv_and_json_keypoint_files_give_the_same_arrays(tmp_path):
    csv_path = _write(tmp_path, "points.csv", "x,y,image,class\n3,1,a.png,tree\n0,0,b.png,sky\n\n2.7,4.2,a.png,road\n")
    rows = [{"image": "a.png", "class": "tree", "x": 3, "y": 1}, {"image": "b.png", "class": "sky", "x": 0, "y": 0},
            {"image": "a.png", "class": "road", "x": 2.7, "y": 4.2}]
    json_path = _write(tmp_path, "points.json", json.dumps(rows, indent=1))
    from_csv = read_keypoints_file(csv_path, ["a.png", "b.png"], [(6, 5), (6, 5)], CLASSES)
    from_json = read_keypoints_file(json_path, ["a.png", "b.png"], [(6, 5), (6, 5)], CLASSES)
    for a, b in zip(from_csv, from_json):
        np.testing.assert_array_equal(a, b)
    labels, weights = from_csv
    assert labels.shape == (2, 6, 5, 3)
    assert np.argwhere(weights).tolist() == [[0, 1, 3, 1], [0, 4, 2, 2], [1, 0, 0, 0]]
    assert (labels == weights).all()


def test_binary_keypoint_file_marks_background_as_negative(tmp_path):
    path = _write(tmp_path, "points.csv", "image,class,x,y\ns0,Mitochondria,1,1\ns0,Background,2,3\n")
    labels, weights = read_keypoints_file(path, ["s0"], [(4, 4)], ["Background", "Mitochondria"], num_classes=1)
    assert labels.shape == (1, 4, 4, 1)
    assert np.argwhere(weights[..., 0]).tolist() == [[0, 1, 1], [0, 3, 2]]
    assert labels[0, 1, 1, 0] == 1 and labels[0, 3, 2, 0] == 0


def test_points_scale_to_the_resized_images(tmp_path):
    path = _write(tmp_path, "points.csv", "image,class,x,y\nbig,sky,49,99\nsmall,road,0,9\n")
    _, weights = read_keypoints_file(path, ["big", "small"], [(100, 50), (10, 10)], CLASSES, out_shape=(10, 10))
    assert np.argwhere(weights).tolist() == [[0, 9, 9, 0], [1, 9, 0, 2]]
    with pytest.raises(ValueError, match="out_shape"):
        read_keypoints_file(path, ["big", "small"], [(100, 50), (10, 10)], CLASSES)


@pytest.mark.parametrize("row,problem", [
    ("a.png,tree,5,0", "line 3: point (5, 0) is outside the 5x6 image 'a.png'"),
    ("a.png,tree,0,-1", "line 3: point (0, -1) is outside the 5x6 image 'a.png'"),
    ("c.png,tree,0,0", "line 3: unknown image 'c.png'"),
    ("a.png,water,0,0", "line 3: unknown class 'water'; known: sky, tree, road"),
    ("a.png,tree,left,0", "line 3: x and y must be numbers"),
    ("a.png,tree,nan,0", "line 3: point (nan, 0) is outside the 5x6 image 'a.png'"),
    ("a.png,tree,0", "line 3: 3 values, expected 4"),
])
def test_bad_keypoint_rows_name_file_and_line(tmp_path, row, problem):
    path = _write(tmp_path, "points.csv", f"image,class,x,y\na.png,sky,1,1\n{row}\n")
    with pytest.raises(KerasweakError) as err:
        read_keypoints_file(path, ["a.png"], [(6, 5)], CLASSES)
    assert str(err.value) == f"{path}: {problem}"


@pytest.mark.parametrize("text,problem", [
    ('[\n  {"image": "a.png", "class": "sky", "x": 0, "y": 0},\n  {"image": "a.png", "class": "tree", "x": 9, "y": 0}\n]',
     "line 3: point (9, 0) is outside the 5x6 image 'a.png'"),
    ('[{"image": "a.png", "class": "sky", "x": 0, "y": 0},\n {"image": "a.png", "x": 0, "y": 0}]',
     'line 2: expected an object with "image", "class", "x" and "y"'),
    ('[{"image": "a.png",\n "class": "sky" "x": 0}]', "line 2: invalid JSON (Expecting ',' delimiter)"),
    ('{"image": "a.png"}', 'expected a JSON list of {"image", "class", "x", "y"} objects'),
])
def test_bad_json_keypoints_name_file_and_line(tmp_path, text, problem):
    path = _write(tmp_path, "points.json", text)
    with pytest.raises(KerasweakError) as err:
        read_keypoints_file(path, ["a.png"], [(6, 5)], CLASSES)
    assert str(err.value) == f"{path}: {problem}"


def test_missing_file_and_header_are_errors(tmp_path):
    with pytest.raises(KerasweakError, match="keypoints file not found"):
        read_keypoints_file(tmp_path / "none.csv", ["a.png"], [(6, 5)], CLASSES)
    path = _write(tmp_path, "points.csv", "image,label,x,y\na.png,sky,1,1\n")
    with pytest.raises(KerasweakError, match="line 1: header must name the columns image, class, x, y"):
        read_keypoints_file(path, ["a.png"], [(6, 5)], CLASSES)


def _read_or_clear_error(path):
    """Read `path` for two 6×5 images; a result must be point arrays, an error one line naming the file."""
    try:
        labels, weights = read_keypoints_file(path, ["a.png", "b.png"], [(6, 5), (6, 5)], CLASSES)
    except KerasweakError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err)
    else:
        assert labels.shape == weights.shape == (2, 6, 5, 3)
        assert set(np.unique(weights)) <= {0, 1} and (labels <= weights).all()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["points.csv", "points.json"]))
def test_arbitrary_bytes_give_keypoints_or_a_clear_error(tmp_path_factory, data, name):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    _read_or_clear_error(path)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=120), st.sampled_from([("points.csv", "image,class,x,y\n"), ("points.json", "[")]))
def test_arbitrary_text_after_a_header_gives_keypoints_or_a_clear_error(tmp_path_factory, text, kind):
    name, start = kind
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_text(start + text, encoding="utf-8")
    _read_or_clear_error(path)


COORDINATES = st.one_of(st.integers(-3, 8), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from(["2", " 1 ", "", "nan", "1e400", "x"]), st.none(), st.booleans())
KEYPOINT_ROWS = st.lists(st.fixed_dictionaries({
    "image": st.one_of(st.sampled_from(["a.png", "b.png", "c.png", ""]), st.integers(), st.none()),
    "class": st.one_of(st.sampled_from([*CLASSES, "water", "", "Sky"]), st.integers(0, 3)),
    "x": COORDINATES, "y": COORDINATES,
}), max_size=5)


@settings(max_examples=100, deadline=None)
@given(KEYPOINT_ROWS, st.booleans())
def test_structured_but_wrong_keypoints_give_arrays_or_a_clear_error(tmp_path_factory, rows, as_json):
    folder = tmp_path_factory.mktemp("fuzz")
    if as_json:
        path = folder / "points.json"
        path.write_text(json.dumps(rows, indent=1))
    else:
        path = folder / "points.csv"
        path.write_text("image,class,x,y\n" + "".join(f"{r['image']},{r['class']},{r['x']},{r['y']}\n" for r in rows))
    _read_or_clear_error(path)


def test_huge_numbers_and_deep_nesting_are_clear_errors(tmp_path):
    huge = _write(tmp_path, "huge.json", '[{"image": "a.png", "class": "sky", "x": 1' + "0" * 400 + ', "y": 0}]')
    with pytest.raises(KerasweakError, match="line 1: x and y must be numbers"):
        read_keypoints_file(huge, ["a.png"], [(6, 5)], CLASSES)
    deep = _write(tmp_path, "deep.json", "[" * 100_000)
    with pytest.raises(KerasweakError, match=r"invalid JSON \(nested too deeply\)"):
        read_keypoints_file(deep, ["a.png"], [(6, 5)], CLASSES)


def _whole_images(max_samples=None):
    """Patches of 32 cut from a 100×70 image "a" (3×2 patches, remainder strips x >= 96 and y >= 64) and a 40×40 "b" (1 patch)."""
    items = [(np.zeros((h, w, 1), np.uint8), np.zeros((h, w), np.uint8), name, name) for name, h, w in (("a", 70, 100), ("b", 40, 40))]
    return patch_set_from_images(items, 32, CLASSES, np.zeros((3, 3), np.uint8), max_samples)


def test_whole_image_points_land_on_the_patch_that_holds_them(tmp_path):
    patches = _whole_images()
    assert patches.origins == [(0, 0), (0, 32), (0, 64), (32, 0), (32, 32), (32, 64), (0, 0)]
    assert patches.source_shapes == {"a": (70, 100), "b": (40, 40)}
    path = _write(tmp_path, "points.csv", "image,class,x,y\n"
                  "a,tree,40,5\n"  # patch 1, origin (0, 32): pixel (5, 8)
                  "a,road,70.9,63.2\n"  # patch 5, origin (32, 64): pixel (31, 6)
                  "b,sky,31,0\n"  # patch 6, origin (0, 0): pixel (0, 31)
                  "a,sky,99,10\na,sky,10,65\nb,sky,33,33\n")  # in the remainder strips: skipped
    points, skipped = read_patch_keypoints(path, patches, 3)
    assert skipped == 3
    assert [p.tolist() for p in points] == [[], [[5, 8, 1, 1]], [], [], [], [[31, 6, 2, 1]], [[0, 31, 0, 1]]]
    labels, weights = keypoint_arrays(points, (32, 32), 3)
    assert labels.shape == (7, 32, 32, 3) and np.argwhere(weights).tolist() == [[1, 5, 8, 1], [5, 31, 6, 2], [6, 0, 31, 0]]
    assert (labels == weights).all()


def test_whole_image_points_follow_subsets_and_binary_classes(tmp_path):
    path = _write(tmp_path, "points.csv", "image,class,x,y\na,tree,40,5\na,sky,33,1\nb,tree,3,4\n")
    points, skipped = read_patch_keypoints(path, _whole_images(max_samples=6), 1)  # b's patch left out
    assert skipped == 1 and [p.tolist() for p in points if len(p)] == [[[5, 8, 0, 1], [1, 1, 0, 0]]]
    patches = _whole_images()
    patches.keypoints = read_patch_keypoints(path, _whole_images(), 1)[0]
    assert [p.tolist() for p in patches.subset([6, 1]).keypoints] == [[[4, 3, 0, 1]], [[5, 8, 0, 1], [1, 1, 0, 0]]]


@pytest.mark.parametrize("row,problem", [
    ("a,tree,100,0", "line 2: point (100, 0) is outside the 100x70 image 'a'"),
    ("c,tree,0,0", "line 2: unknown image 'c'"),
])
def test_whole_image_points_are_checked_against_the_whole_images(tmp_path, row, problem):
    path = _write(tmp_path, "points.csv", f"image,class,x,y\n{row}\n")
    with pytest.raises(KerasweakError) as err:
        read_patch_keypoints(path, _whole_images(max_samples=2), 3)
    assert str(err.value) == f"{path}: {problem}"


def test_spss_plus_trains_on_the_users_keypoints_instead_of_sampled_ones(tmp_path):
    from kerasweak.losses import pack_keypoints
    from kerasweak.methods import METHODS

    patches = _whole_images()
    patches.keypoints = read_patch_keypoints(_write(tmp_path, "p.csv", "image,class,x,y\na,road,40,5\n"), patches, 3)[0]
    recipe = _spss_plus_recipe({"k": 5})
    targets = METHODS["spss_plus"].targets(patches.subset([1, 6]), recipe)
    expected = pack_keypoints(*keypoint_arrays(patches.subset([1, 6]).keypoints, (32, 32), 3))
    np.testing.assert_array_equal(targets["class_maps"], expected)
    assert targets["class_maps"][1].sum() == 0 and targets["class_maps"][0, 5, 8].tolist() == [0, 0, 1, 0, 0, 1]


@pytest.mark.slow
def test_recipe_trains_spss_plus_from_a_keypoints_file_of_whole_image_points(tmp_path, fake_epfl, tiny_recipe):
    """em-spss-plus on the fake EPFL stack (four 64×64 slices, patches of 32) from clicked points, not the masks."""
    from helpers import assert_clean_error, kerasweak

    recipe = tiny_recipe(extends="em-spss-plus", name="tiny-em", train={"epochs": 1})
    points = _write(tmp_path, "points.csv", "image,class,x,y\ntraining.tif[0],Mitochondria,15,10\n"
                    "training.tif[0],Background,50,50\ntraining.tif[1],Mitochondria,20,15\n"
                    "training.tif[3],Mitochondria,20,25\n")  # slice 3: left out by --max-samples 12
    out = tmp_path / "out"
    run = lambda keypoints: kerasweak("recipe", recipe, "--data", fake_epfl.parent, "--out", out, "--max-samples", 12,
                                      "--keypoints", keypoints, cwd=tmp_path)
    result = run(points)
    assert result.returncode == 0, result.stderr
    assert f"{points}: 3 keypoints on 3 patches; 1 skipped" in result.stdout
    assert json.loads((out / "config.json").read_text())["keypoints"] == str(points)
    assert json.loads((out / "model" / "kerasweak.json").read_text())["method"] == "spss_plus"
    other = _write(tmp_path, "other.csv", "image,class,x,y\ntraining.tif[0],Mitochondria,15,10\n")
    assert_clean_error(run(other), "different recipe or options")


def test_per_class_counts_weigh_the_negatives_of_a_sigmoid_channel():
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[:, :4] = 1
    labels, weights = sample_keypoints(masks, 1, k={0: 6, 1: 2}, seed=0)
    assert (weights.reshape(2, -1).sum(axis=1) == 8).all()  # 6 negatives and 2 positives share channel 0
    assert (labels.reshape(2, -1).sum(axis=1) == 2).all()
    np.testing.assert_array_equal(*sample_keypoints(masks, 1, k={1: 2}, seed=0))  # a class left out gets no points


def _spss_plus_recipe(keypoints):
    from kerasweak.recipe import normalise_recipe

    return normalise_recipe({"name": "r", "dataset": "epfl-em", "method": "spss_plus", "keypoints": keypoints})


@pytest.mark.parametrize("k", [0, "3", True, {"Background": -1}, {"Background": 0}])
def test_bad_keypoint_counts_are_one_line_errors(k):
    with pytest.raises(KerasweakError, match=r"^r: \[keypoints\] k must be an integer"):
        _spss_plus_recipe({"k": k})


def test_keypoint_counts_by_unknown_class_name_are_an_error():
    from kerasweak.data import synthetic_patches
    from kerasweak.methods.spss_plus import keypoint_targets

    recipe = _spss_plus_recipe({"k": {"class1": 2, "Mito": 2}})
    with pytest.raises(KerasweakError, match=r"^r: \[keypoints\] k: unknown Mito; known: class0, class1, class2$"):
        keypoint_targets(synthetic_patches(n=2, size=16), recipe)
    targets = keypoint_targets(synthetic_patches(n=2, size=16), _spss_plus_recipe({"k": {"class1": 2}}))
    assert set(targets) == {"proportions", "class_maps"}
