"""Fuzzing the proportions CSV reader: valid proportions or a one-line KerasweakError naming the file, nothing else."""

import csv
import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak.data import read_proportions_csv
from kerasweak.errors import KerasweakError

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(0, 1).map(str),
    st.sampled_from(["", " ", "0", "1", "0.5", "-0", "1e400", "nan", "inf", "-1", "1_0", "0x1", "½", "a.png", '"']),
    st.text(max_size=6),
)


def _check(path):
    """Read `path`; a result must be valid proportions, an error one line naming the file."""
    try:
        images, props, names = read_proportions_csv(path)
    except KerasweakError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err)
    else:
        assert len(names) >= 2 and props.shape == (len(images), len(names)) and len(images) >= 1
        assert np.isfinite(props).all() and (props >= 0).all()
        np.testing.assert_allclose(props.sum(axis=1), 1.0, atol=1.01e-2)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_proportions_or_a_clear_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "props.csv"
    path.write_bytes(data)
    _check(path)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_after_a_header_gives_proportions_or_a_clear_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "props.csv"
    path.write_text("image,a,b\n" + text, encoding="utf-8")
    _check(path)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=5), min_size=0, max_size=4),
       st.lists(st.tuples(st.sampled_from(["x.png", "", "dir/y.png"]), st.lists(CELLS, max_size=5)), max_size=4))
def test_structured_but_wrong_rows_give_proportions_or_a_clear_error(tmp_path_factory, classes, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image", *classes])
    for image, cells in rows:
        writer.writerow([image, *cells])
    path = tmp_path_factory.mktemp("fuzz") / "props.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    _check(path)
