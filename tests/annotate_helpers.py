"""Shared by the annotate tests: a tiny generic folder, a running annotate server, raw HTTP requests, a headless Chromium."""

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from helpers import ENTRY_POINT

CHROMIUM = os.environ.get("KERASWEAK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KERASWEAK_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1200,800")


def write_folder(root, classes=("background", "cell"), colours=None, n=3, shape=(64, 96), scene=False):
    """A generic folder: dataset.toml and `n` RGB images (a bright square on dark noise, or a `scene`), no labels."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    toml = "classes = [" + ", ".join(f'"{c}"' for c in classes) + "]\n"
    if colours:
        toml += f"colours = {list(map(list, colours))}\n"
    (root / "dataset.toml").write_text(toml)
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.integers(0, 60, shape + (3,), dtype=np.uint8)
        y, x = 8 + 4 * i, 10 + 6 * i
        image[y:y + 24, x:x + 24] = 220
        if scene:
            image = _scene(shape, rng)
        Image.fromarray(image).save(root / "images" / f"img{i}.png")
    return root


def _scene(shape, rng):
    """A made-up aerial view: grass, a grey road and a few roofs."""
    height, width = shape
    image = np.empty(shape + (3,), np.float64)
    image[:] = (70, 110, 60)
    yy, xx = np.mgrid[:height, :width]
    road = np.abs(yy - (0.55 * height + 0.25 * (xx - width / 2))) < height * 0.06
    image[road] = (150, 150, 150)
    for _ in range(6):
        h, w = rng.integers(height // 10, height // 5, 2)
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        image[y:y + h, x:x + w] = rng.choice([(190, 80, 60), (210, 200, 190), (120, 60, 50)])
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def start_server(folder, model=None, host=None):
    """(server, lock, thread): a running kerasweak annotate server on a free port."""
    from kerasweak.annotate import make_server

    server, lock = make_server(folder, model=model, host=host, port=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, lock, thread


def stop_server(server, lock):
    from kerasweak.annotate import close

    server.shutdown()
    close(server, lock)


def request(port, method, path, body=None, headers=None):
    """(status, text) of one raw HTTP request: the path is sent exactly as given (no normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in headers.items():
        conn.putheader(key, value)
    data = body.encode() if isinstance(body, str) else body
    conn.putheader("Content-Length", str(len(data or b"")))
    conn.endheaders(data)
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, text


def read_csv(path):
    return Path(path).read_text().splitlines()


def chromium_available():
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def chrome():
    """A headless Chromium driven by selenium through the system chromedriver (nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="kerasweak-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.profile_dir = profile
    return driver


def quit_chrome(driver):
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


def annotate_process(folder, *args):
    """A `kerasweak annotate FOLDER --port 0` subprocess and the address it printed."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([str(ENTRY_POINT), "annotate", str(folder), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "http://" in line:
            return proc, line[line.index("http://"):].split()[0]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"kerasweak annotate did not print its address: {line!r}")
