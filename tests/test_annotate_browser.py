"""kerasweak annotate in a real headless Chromium (Debian's chromium and chromium-driver, driven by selenium).

Missing Chromium skips these tests, unless KERASWEAK_REQUIRE_BROWSER=1 (.ci/run sets it) makes that a failure.
KERASWEAK_SCREENSHOT=PATH also writes the screenshot of the model-assist test there (docs/annotate.png).
"""

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from helpers import ENTRY_POINT
from annotate_helpers import (annotate_process, chrome, chromium_available, quit_chrome, read_csv, start_server, stop_server,
                              write_folder)

if not chromium_available():
    if os.environ.get("KERASWEAK_REQUIRE_BROWSER") == "1":
        raise RuntimeError("the browser tests need /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium "
                           "chromium-driver)")
    pytest.skip("no Chromium (apt-get install chromium chromium-driver)", allow_module_level=True)
pytest.importorskip("selenium")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    driver = chrome()
    yield driver
    quit_chrome(driver)


class Page:
    """The annotation page in the browser: actions in image pixels, and the page's own view of the labels."""

    def __init__(self, driver, url):
        self.driver = driver
        driver.get(url)
        self.wait(lambda d: d.execute_script("return S.images.length > 0 && document.getElementById('image').complete"))

    def wait(self, condition, timeout=20):
        return WebDriverWait(self.driver, timeout).until(condition)

    def offset(self, x, y):
        """Offset from the overlay's centre (what selenium's actions take) of image pixel (x, y)."""
        overlay = self.driver.find_element(By.ID, "overlay")
        image = self.driver.execute_script("return current()")
        zoom = overlay.rect["width"] / image["width"]
        return overlay, round((x - image["width"] / 2) * zoom), round((y - image["height"] / 2) * zoom)

    def click(self, x, y):
        saves = self.state("saves")
        overlay, dx, dy = self.offset(x, y)
        ActionChains(self.driver).move_to_element_with_offset(overlay, dx, dy).click().perform()
        self.saved(saves)

    def drag(self, start, end):
        saves = self.state("saves")
        overlay, dx, dy = self.offset(*start)
        _, ex, ey = self.offset(*end)
        ActionChains(self.driver).move_to_element_with_offset(overlay, dx, dy).click_and_hold() \
            .move_by_offset((ex - dx) // 2, (ey - dy) // 2).move_by_offset(ex - dx - (ex - dx) // 2, ey - dy - (ey - dy) // 2) \
            .release().perform()
        self.saved(saves)

    def keys(self, keys):
        self.driver.find_element(By.TAG_NAME, "body").send_keys(keys)

    def saved(self, saves=None):
        """Wait until every change sent is saved; with `saves` (S.saves before an action), until the action saved one more."""
        self.wait(lambda d: d.find_element(By.ID, "status").text == "saved"
                  and d.execute_script("return S.queue.then(() => S.saves)") > (-1 if saves is None else saves))

    def state(self, table):
        return self.driver.execute_script(f"return S.{table}")

    def text(self, element_id):
        return self.driver.find_element(By.ID, element_id).text


def keypoint_rows(folder):
    return [row.split(",") for row in read_csv(folder / "keypoints.csv")[1:]]


@pytest.mark.slow
def test_points_proportions_and_a_size_square_are_saved_exactly_and_come_back_after_a_reload(tmp_path, browser):
    folder = write_folder(tmp_path / "folder", colours=[(40, 40, 40), (230, 30, 30)])
    server, lock, _ = start_server(folder)
    url = server.url
    try:
        page = Page(browser, url)
        assert page.text("progress") == "points 0/3 · proportions 0/3 · sizes 0/3"
        page.keys("1")
        page.click(20, 30)
        page.keys("2")
        page.click(60, 40)
        page.click(80, 10)
        page.drag((60, 40), (70, 50))  # drag the second point
        ActionChains(browser).context_click(browser.find_elements(By.CSS_SELECTOR, "circle.point")[2]).perform()
        page.saved()
        rows = keypoint_rows(folder)
        assert [(image, cls) for image, cls, _, _ in rows] == [("img0.png", "background"), ("img0.png", "cell")]
        np.testing.assert_allclose([[float(x), float(y)] for _, _, x, y in rows], [[20, 30], [70, 50]], atol=0.3)

        page.keys("o")
        slider = browser.find_element(By.ID, "prop-1")
        slider.send_keys(Keys.ARROW_RIGHT * 10)  # 50/50 -> 40/60, the other slider follows
        page.saved()
        assert [browser.find_element(By.ID, f"prop-{i}").get_attribute("value") for i in (0, 1)] == ["40", "60"]
        assert read_csv(folder / "proportions.csv") == ["image,background,cell", "img0.png,0.4,0.6"]

        page.keys("s")
        page.drag((30, 20), (50, 35))  # the side is the larger of the two extents
        size = float(read_csv(folder / "sizes.csv")[1].split(",")[1])
        assert read_csv(folder / "sizes.csv")[1].startswith("img0.png,") and abs(size - 20) <= 0.3
        assert page.text("size-value") == f"{size:g}"

        page.keys("p")
        page.keys(Keys.ARROW_RIGHT)
        assert page.text("image-name") == "img1.png" and page.text("position") == "2 / 3"
        page.click(5, 5)
        page.keys(Keys.ARROW_LEFT)
        assert page.text("image-name") == "img0.png"
        assert page.text("progress") == "points 2/3 · proportions 1/3 · sizes 1/3"

        page = Page(browser, url)  # reload: the page shows exactly what the files hold
        assert page.text("progress") == "points 2/3 · proportions 1/3 · sizes 1/3"
        shown = page.state("keypoints")
        assert [[image, cls, f"{x:g}", f"{y:g}"] for image in shown for x, y, cls in shown[image]] == keypoint_rows(folder)
        assert page.state("proportions") == {"img0.png": [0.4, 0.6]} and page.state("sizes") == {"img0.png": size}
        assert len(browser.find_elements(By.CSS_SELECTOR, "circle.point")) == 2
        times = {tuple(row.split(",")[:2]): float(row.split(",")[2]) for row in read_csv(folder / "label_times.csv")[1:]}
        assert set(times) == {("img0.png", "keypoints"), ("img0.png", "proportions"), ("img0.png", "size"),
                              ("img1.png", "keypoints")} and all(0 < t < 120 for t in times.values())
    finally:
        stop_server(server, lock)


@pytest.mark.slow
def test_killing_the_server_between_two_edits_loses_nothing_saved(tmp_path, browser):
    folder = write_folder(tmp_path / "folder")
    proc, url = annotate_process(folder, "--port", "0")
    try:
        page = Page(browser, url)
        page.keys("2")
        page.click(10, 10)
        page.keys("o")
        browser.find_element(By.ID, "prop-0").send_keys(Keys.ARROW_LEFT * 20)
        page.saved()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert [row[:2] for row in keypoint_rows(folder)] == [["img0.png", "cell"]]
    assert read_csv(folder / "proportions.csv") == ["image,background,cell", "img0.png,0.3,0.7"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.name != ".annotate.lock"]
    proc, url = annotate_process(folder, "--port", "0")  # the kernel freed the killed server's lock
    try:
        page = Page(browser, url)
        assert len(browser.find_elements(By.CSS_SELECTOR, "circle.point")) == 1
        page.click(50, 50)  # a fresh page starts with the first class
        assert [row[:2] for row in keypoint_rows(folder)] == [["img0.png", "cell"], ["img0.png", "background"]]
        assert read_csv(folder / "proportions.csv") == ["image,background,cell", "img0.png,0.3,0.7"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def tiny_export(path, classes, colours, seed=3):
    """A small untrained U-Net with scaled logits (so its maps have structure), exported as kerasweak does."""
    import keras

    from kerasweak.inference import export_segmenter
    from kerasweak.models import build_unet
    from kerasweak.recipe import load_recipe

    keras.utils.set_random_seed(seed)
    model = build_unet(len(classes), base_filters=4, channels=3)
    logits = model.get_layer("class_logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * 20.0, bias])
    recipe = load_recipe("dubai-spss")
    export_segmenter(model, path, {"method": "spss", "recipe": recipe, "dataset": "folder", "class_names": list(classes),
                                   "palette": [list(c) for c in colours], "num_outputs": len(classes),
                                   "patch_size": recipe["data"]["patch_size"], "channels": 3, "split": recipe["data"]})
    return path


@pytest.mark.slow
def test_model_suggestions_are_marked_until_accepted_and_the_screenshot(tmp_path, browser):
    classes, colours = ("background", "building", "road"), [(60, 60, 60), (230, 60, 40), (40, 160, 230)]
    folder = write_folder(tmp_path / "folder", classes=classes, colours=colours, n=4, shape=(192, 288), scene=True)
    model = tiny_export(tmp_path / "model", classes, colours)
    server, lock, _ = start_server(folder, model=model)
    try:
        page = Page(browser, server.url)
        page.wait(lambda d: d.execute_script("return !!S.suggestions['img0.png']"), timeout=120)
        suggestion = page.state("suggestions")["img0.png"]
        assert not (folder / "keypoints.csv").exists() and not (folder / "proportions.csv").exists()  # not saved yet
        assert len(browser.find_elements(By.CSS_SELECTOR, "circle.suggestion")) == len(suggestion["points"]) > 0
        ActionChains(browser).click(browser.find_elements(By.CSS_SELECTOR, "circle.suggestion")[0]).perform()
        page.saved()  # one candidate taken by a click (the topmost circle where the first one is)
        (taken,) = browser.execute_script("return [...S.accepted['img0.png']]")
        x, y, cls = suggestion["points"][taken]
        assert keypoint_rows(folder) == [["img0.png", cls, f"{x:g}", f"{y:g}"]]
        page.keys(Keys.ENTER)  # accept the other candidates
        page.saved()
        assert len(keypoint_rows(folder)) == len(suggestion["points"])
        page.keys("o")
        assert "suggested by the model" in page.text("proportions-note")
        page.keys(Keys.ENTER)
        page.saved()
        row = [float(v) for v in read_csv(folder / "proportions.csv")[1].split(",")[1:]]
        assert abs(sum(row) - 1) < 1e-9 and np.abs(np.array(row) - suggestion["proportions"]).max() <= 0.01
        assert browser.find_element(By.ID, "order-label").is_displayed()
        browser.execute_script("document.getElementById('order').value = 'uncertain'; applyOrder();")
        page.keys(Keys.ARROW_RIGHT)  # another image: its suggestions stay dashed while points and sliders are set
        page.wait(lambda d: d.execute_script("return !!S.suggestions[name()]"), timeout=120)
        page.keys("p")
        page.keys("2")
        page.click(60, 50)
        page.keys("3")
        page.click(200, 150)
        page.keys("o")
        browser.find_element(By.ID, "prop-1").send_keys(Keys.ARROW_RIGHT * 12)
        page.saved()
        assert len(browser.find_elements(By.CSS_SELECTOR, "circle.suggestion")) > 0
        shot = tmp_path / "annotate.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("KERASWEAK_SCREENSHOT"):
            shutil.copyfile(shot, Path(os.environ["KERASWEAK_SCREENSHOT"]))
    finally:
        stop_server(server, lock)


@pytest.mark.slow
def test_labels_made_in_the_page_train_a_model_end_to_end(tmp_path, browser):
    """Points and proportions entered in the page, then `kerasweak train spss-plus` on exactly the files the page saved."""
    import subprocess

    folder = write_folder(tmp_path / "folder", n=4)
    server, lock, _ = start_server(folder)
    try:
        page = Page(browser, server.url)
        for i in range(4):
            assert page.text("image-name") == f"img{i}.png"
            page.keys("p2")
            page.click(20 + 6 * i, 20 + 4 * i)  # on the bright square
            page.keys("1")
            page.click(85, 55)
            page.keys("o")
            saves = page.state("saves")
            browser.find_element(By.ID, "prop-1").send_keys(Keys.ARROW_LEFT * (20 + i))
            page.saved(saves)
            page.keys(Keys.ARROW_RIGHT)
    finally:
        stop_server(server, lock)
    assert read_csv(folder / "proportions.csv") == ["image,background,cell"] + [
        f"img{i}.png,{(70 + i) / 100:g},{(30 - i) / 100:g}" for i in range(4)]
    assert [row[:2] for row in keypoint_rows(folder)] == [[f"img{i}.png", c] for i in range(4) for c in ("cell", "background")]
    saved = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([str(ENTRY_POINT), "train", "spss-plus", str(folder), "--out",
                          str(tmp_path / "out"), "--epochs", "1", "--patch-size", "32", "--batch-size", "2",
                          "--base-filters", "2"], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "4 images without masks" in run.stdout
    split = read_csv(tmp_path / "out" / "split.csv")
    assert sorted(row.split(",")[0] for row in split[1:]) == [f"img{i}.png" for i in range(4)]
    assert (tmp_path / "out" / "model" / "kerasweak.json").is_file()
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == saved  # training read, never wrote, the labels
