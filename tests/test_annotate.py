"""kerasweak annotate without a browser: the files it writes, and the requests it refuses (docs/annotate.md)."""

import os
import subprocess

import numpy as np
import pytest

from helpers import ENTRY_POINT
from annotate_helpers import read_csv, request, start_server, stop_server, write_folder


@pytest.fixture
def served(tmp_path):
    """(folder, port) of a running server on a two-class folder with three images."""
    folder = write_folder(tmp_path / "folder")
    server, lock, _ = start_server(folder)
    yield folder, server.server_address[1]
    stop_server(server, lock)


def save(port, image, kind, value, seconds=0):
    return request(port, "POST", "/api/save", {"image": image, "kind": kind, "value": value, "seconds": seconds})


def test_each_change_is_written_at_once_in_the_generic_folder_format(served):
    from kerasweak.data.folder import read_labels

    folder, port = served
    assert save(port, "img0.png", "keypoints", [[3, 4, "cell"], [10.5, 20.25, "background"]], 2.5)[0] == 200
    assert read_csv(folder / "keypoints.csv") == ["image,class,x,y", "img0.png,cell,3,4", "img0.png,background,10.5,20.2"]
    assert save(port, "img1.png", "proportions", [0.25, 0.75], 4)[0] == 200
    assert save(port, "img0.png", "proportions", [0.6, 0.4])[0] == 200
    assert read_csv(folder / "proportions.csv") == ["image,background,cell", "img0.png,0.6,0.4", "img1.png,0.25,0.75"]
    assert save(port, "img2.png", "size", 17.5, 1)[0] == 200
    assert read_csv(folder / "sizes.csv") == ["image,size", "img2.png,17.5"]
    assert save(port, "img0.png", "keypoints", [[5, 6, "cell"]], 1.5)[0] == 200
    assert read_csv(folder / "keypoints.csv") == ["image,class,x,y", "img0.png,cell,5,6"]
    assert read_csv(folder / "label_times.csv") == ["image,kind,seconds", "img0.png,keypoints,4", "img1.png,proportions,4",
                                                    "img2.png,size,1"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.name != ".annotate.lock"]  # no temporaries
    assert save(port, "img2.png", "proportions", [1, 0])[0] == 200  # without masks, train needs every image's proportions
    warnings = []
    labels = read_labels(folder, warnings)  # the folder reader of `kerasweak train` reads what the page wrote
    assert all("label_times.csv: not read" in w for w in warnings)  # the timings are for people, not for training
    assert labels.keypoints == {"img0.png": [(5.0, 6.0, 1)]}
    assert labels.sizes == {"img2.png": 17.5}
    np.testing.assert_allclose(labels.proportions["img1.png"], [0.25, 0.75])
    assert save(port, "img2.png", "size", None)[0] == 200
    assert read_csv(folder / "sizes.csv") == ["image,size"]


def test_a_new_server_shows_what_was_saved_and_keeps_rows_of_other_images(tmp_path):
    from kerasweak.annotate import LabelStore

    folder = write_folder(tmp_path / "folder")
    (folder / "keypoints.csv").write_text("image,class,x,y\ngone.png,cell,1,2\nimg1,background,7,8\n")
    store = LabelStore(folder)
    assert store.state()["keypoints"] == {"img1.png": [[7.0, 8.0, "background"]]}
    store.save("img0.png", "keypoints", [[1, 1, "cell"]])
    assert read_csv(folder / "keypoints.csv") == ["image,class,x,y", "img0.png,cell,1,1", "img1.png,background,7,8",
                                                  "gone.png,cell,1,2"]


TRAVERSALS = ["/images/../dataset.toml", "/images/..%2Fdataset.toml", "/images/%2e%2e/dataset.toml", "/../dataset.toml",
              "/images/%2Fetc%2Fpasswd", "/images/..%5C..%5Cdataset.toml", "/static/../store.py", "/static/..%2F__init__.py",
              "/images/img0.png%00.txt", "//etc/passwd", "/dataset.toml", "/keypoints.csv", "/.annotate.lock",
              "/static/index.html/../../server.py", "/api/suggest/..%2F..%2Fdataset.toml", "http://example.com/images/img0.png"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_only_the_page_and_the_images_are_served(served, path):
    folder, port = served
    status, text = request(port, "GET", path)
    assert 400 <= status < 500 and text.count("\n") == 1, (status, text)
    assert "classes" not in text and "root:" not in text
    assert request(port, "GET", "/images/img0.png")[0] == 200


BAD = [({"image": "nope.png", "kind": "size", "value": 1}, 404, "unknown image"),
       ({"image": "img0.png", "kind": "masks", "value": 1}, 400, "unknown label kind"),
       ({"image": "img0.png", "kind": "keypoints", "value": [[1, 2, "tree"]]}, 400, "unknown class"),
       ({"image": "img0.png", "kind": "keypoints", "value": [[500, 2, "cell"]]}, 400, "outside the 96x64 image"),
       ({"image": "img0.png", "kind": "keypoints", "value": [[1, "NaN", "cell"]]}, 400, "finite numbers"),
       ({"image": "img0.png", "kind": "keypoints", "value": {"x": 1}}, 400, "must be a list"),
       ({"image": "img0.png", "kind": "proportions", "value": [0.5, 0.6]}, 400, "sum to 1.1000, not 1"),
       ({"image": "img0.png", "kind": "proportions", "value": [1.5, -0.5]}, 400, ">= 0"),
       ({"image": "img0.png", "kind": "proportions", "value": [1]}, 400, "list of 2 numbers"),
       ({"image": "img0.png", "kind": "size", "value": -3}, 400, ">= 0"),
       ({"image": "img0.png", "kind": "size", "value": 500}, 400, "larger than the 96x64 image"),
       ({"image": "img0.png", "kind": "size", "value": 3, "seconds": -1}, 400, "seconds"),
       ({"image": "img0.png", "kind": "size"}, 400, "the body must be"),
       ({"image": "img0.png", "kind": "size", "value": 3, "extra": 1}, 400, "the body must be"),
       ([1, 2], 400, "the body must be"),
       ("{not json", 400, "not JSON")]


@pytest.mark.parametrize("body,status,reason", BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
def test_malformed_requests_get_a_one_line_4xx_and_change_nothing(served, body, status, reason):
    folder, port = served
    assert save(port, "img0.png", "keypoints", [[1, 1, "cell"]])[0] == 200
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    got, text = request(port, "POST", "/api/save", body, {"Content-Type": "application/json"})
    assert got == status and reason in text and text.count("\n") == 1, (got, text)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("method,path,headers,status", [
    ("POST", "/api/save", {"Content-Type": "text/plain"}, 415),
    ("PUT", "/api/save", {}, 405),
    ("DELETE", "/images/img0.png", {}, 405),
    ("GET", "/api/state", {"Host": "attacker.example:80"}, 403),
    ("GET", "/api/suggest/img0.png", {}, 404),
    ("POST", "/api/state", {"Content-Type": "application/json"}, 404)])
def test_other_refusals(served, method, path, headers, status):
    folder, port = served
    got, text = request(port, method, path, "{}", headers)
    assert got == status and text.count("\n") == 1, (got, text)


def test_another_host_needs_the_token(tmp_path):
    folder = write_folder(tmp_path / "folder")
    server, lock, _ = start_server(folder, host="127.0.0.1")
    try:
        port, token = server.server_address[1], server.token
        assert server.url.endswith(f"?token={token}") and len(token) >= 16
        assert request(port, "GET", "/api/state")[0] == 403
        assert request(port, "GET", "/api/state?token=wrong")[0] == 403
        assert request(port, "GET", f"/?token={token}")[0] == 200
        assert request(port, "GET", "/api/state", headers={"Cookie": f"kerasweak_token={token}"})[0] == 200
        assert request(port, "POST", "/api/save", {"image": "img0.png", "kind": "size", "value": 2})[0] == 403
        assert not (folder / "sizes.csv").exists()
    finally:
        stop_server(server, lock)


def test_a_second_server_on_the_same_folder_is_refused(tmp_path):
    from kerasweak.annotate import make_server
    from kerasweak.errors import KerasweakError

    folder = write_folder(tmp_path / "folder")
    server, lock, _ = start_server(folder)
    with pytest.raises(KerasweakError, match="another `kerasweak annotate` .* is serving this folder"):
        make_server(folder)
    stop_server(server, lock)
    server, lock, _ = start_server(folder)  # free again once the first has stopped
    stop_server(server, lock)
    with pytest.raises(KerasweakError, match="not a folder"):
        make_server(tmp_path / "missing")


def test_suggestions_from_class_maps():
    from kerasweak.annotate.assist import class_probabilities, largest_square_side, suggestions_from_probabilities

    maps = np.zeros((40, 60, 1), np.float32)
    maps[5:17, 30:42] = 0.9  # a 12x12 object
    probabilities = class_probabilities(maps, 1)
    out = suggestions_from_probabilities(probabilities, ["background", "cell"], points_per_class=2)
    np.testing.assert_allclose(out["proportions"], [1 - 144 * 0.9 / 2400, 144 * 0.9 / 2400], atol=1e-4)
    assert out["size"] == 12.0 == largest_square_side(np.pad(np.ones((12, 12), bool), 3))
    cells = [p for p in out["points"] if p[2] == "cell"]
    assert len(cells) == 2 and all(30 <= x < 42 and 5 <= y < 17 for x, y, _ in cells)
    assert 0 < out["uncertainty"] < 1
    sure = suggestions_from_probabilities(np.eye(3)[np.zeros((8, 8), int)], ["a", "b", "c"])
    assert sure["uncertainty"] == 0 and sure["proportions"] == [1, 0, 0] and "size" not in sure


@pytest.mark.slow
def test_cli_refuses_a_second_server(tmp_path):
    from annotate_helpers import annotate_process

    folder = write_folder(tmp_path / "folder")
    proc, url = annotate_process(folder, "--port", "0")
    try:
        assert url.startswith("http://127.0.0.1:")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        second = subprocess.run([str(ENTRY_POINT), "annotate", str(folder), "--port", "0"],
                                capture_output=True, text=True, env=env, timeout=300)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines()[-1] == (f"error: {folder}: another `kerasweak annotate` (pid {proc.pid} "
                                                          f"on {os.uname().nodename}) is serving this folder; stop it first")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert not (folder / ".annotate.lock").exists()


def test_the_bad_input_catalogue_lists_the_refusals():
    from pathlib import Path

    catalogue = (Path(__file__).resolve().parents[1] / "docs" / "bad-input.md").read_text()
    section = catalogue[catalogue.index("## The annotation page"):]
    for reason in ("refused: the path leaves the served folder", "unknown image 'nope.png' (not in images/)",
                   "unknown class 'tree'; known: background, cell", "point (500, 2) is outside the 96x64 image",
                   "proportions sum to 1.1000, not 1", "size 500 is larger than the 96x64 image",
                   "the body is not JSON (JSONDecodeError)", "is not the loopback address",
                   "the token is missing or wrong", "is serving this folder; stop it first"):
        assert reason in section, reason
