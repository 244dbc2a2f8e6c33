"""The demo page (serving/web_page.py): served at ``/`` to browsers beside kserve's liveness JSON, and
driven in headless Chromium through chromedriver's W3C WebDriver HTTP API (no selenium needed).

Reuses the real ``python -m serving`` fixtures of tests/conftest.py (an untrained tiny model,
so the page is checked against what the API answers, not against the word typed). The browser
tests skip when Debian's ``chromium`` / ``chromium-driver`` are not installed. All traffic goes to
127.0.0.1; chromedriver and Chromium run in their own process group, killed at the end.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from serving.web_page import UI_PATH, render_page
from tests.support.tiny_data import TINY_SPEC
from tests.test_serving_http import MODEL, Server, _free_port, v1_predict, word_image_b64
from tools.processes import start_process, stop_process, wait_until_ready

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT = Path("/tmp/wordocr-web-page.png")
BROWSER_HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # Chromium's navigation Accept
WAIT_S = 20.0


# --------------------------------------------------------------------------- over HTTP, no browser


def test_browsers_get_the_page_at_root_and_everyone_else_keeps_kserve_liveness(server: Server):
    page = requests.get(f"{server.url}/", headers={"Accept": BROWSER_HTML}, timeout=5)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'<meta name="wordocr-model" content="{MODEL}">' in page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert "Accept" in page.headers["vary"]
    # Self-contained: no script, style, font or image from anywhere else.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text)
    assert "@import" not in page.text and "url(" not in page.text

    for accept in (None, "*/*", "application/json"):
        headers = {} if accept is None else {"Accept": accept}
        assert requests.get(f"{server.url}/", headers=headers, timeout=5).json() == {"status": "alive"}

    always = requests.get(f"{server.url}{UI_PATH}", timeout=5)
    assert always.status_code == 200 and always.text == page.text
    assert "{{" not in page.text  # every placeholder filled


def test_the_typing_hint_says_what_the_served_model_reads():
    from wordocr.config import LOWER_CASE, WRITTEN

    assert "capitals read as lower case" in render_page("m", LOWER_CASE)
    written = render_page("m", WRITTEN)
    assert "digits and apostrophes" in written and "capitals read as lower case" not in written


def test_return_image_adds_the_model_input_as_png_and_is_off_by_default(server: Server):
    instances = [{"word": "game", "return_image": True}, {"image_b64": word_image_b64("cat"), "return_image": True},
                 {"word": "dog"}, {"word": "sun", "return_image": False}]
    response = v1_predict(server, {"instances": instances})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    for prediction in predictions[:2]:
        image = Image.open(io.BytesIO(base64.b64decode(prediction["model_input_png_b64"])))
        assert (image.format, image.mode, image.size) == ("PNG", "L", (TINY_SPEC.width, TINY_SPEC.height))
    for prediction in predictions[2:]:
        assert set(prediction) == {"pred_text", "confidence", "top_3_paths", "top_3_confidences"}
    # Asking for the image changes nothing else. The same batch without it, to the last digit: a batch of
    # another size may take another compiled path (XLA at batch 1) and differ in the 6th digit.
    without = [{k: v for k, v in instance.items() if k != "return_image"} for instance in instances]
    plain = v1_predict(server, {"instances": without}).json()["predictions"]
    assert [{k: v for k, v in p.items() if k != "model_input_png_b64"} for p in predictions] == plain

    bad = v1_predict(server, {"instances": [{"word": "game", "return_image": "yes"}]})
    assert bad.status_code == 400
    assert '"return_image" must be true or false' in bad.json()["error"]


# --------------------------------------------------------------------------- in headless Chromium


class WebDriver:
    """Just enough of the W3C WebDriver protocol, spoken by chromedriver over HTTP, to drive one page."""

    ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference

    def __init__(self, url: str):
        self.url = url
        self.session = ""

    def call(self, method: str, path: str, body: dict | None = None):
        # chromedriver wants a JSON object on every POST, even one with no parameters.
        body = body if body is not None or method != "POST" else {}
        response = requests.request(method, f"{self.url}{path}", json=body, timeout=30)
        value = response.json()["value"]
        if response.status_code != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {value.get('error')}: {value.get('message')}")
        return value

    def start(self, chromium: str, args: list[str]) -> None:
        options = {"binary": chromium, "args": args}
        self.session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": options}}})["sessionId"]

    def quit(self) -> None:
        if self.session:
            self.call("DELETE", f"/session/{self.session}")
            self.session = ""

    def cmd(self, method: str, path: str, body: dict | None = None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self.cmd("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return self.cmd("POST", "/element", {"using": "css selector", "value": css})[self.ELEMENT]

    def type(self, css: str, text: str) -> None:
        element = self.find(css)
        self.cmd("POST", f"/element/{element}/clear")
        self.cmd("POST", f"/element/{element}/value", {"text": text})

    def choose_file(self, css: str, path: Path) -> None:
        self.cmd("POST", f"/element/{self.find(css)}/value", {"text": str(path)})

    def click(self, css: str) -> None:
        self.cmd("POST", f"/element/{self.find(css)}/click")

    def js(self, script: str, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, timeout: float = WAIT_S):
        deadline = time.monotonic() + timeout
        while not (value := self.js(script)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {script}")
            time.sleep(0.05)
        return value

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))


def _driver_ready(client: WebDriver) -> bool:
    try:
        return bool(client.call("GET", "/status")["ready"])
    except requests.ConnectionError:
        return False


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[WebDriver]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless Chromium needs Debian's chromium and chromium-driver: "
                    "apt-get install -y chromium chromium-driver")
    folder = tmp_path_factory.mktemp("chromium")
    port = _free_port()
    with open(folder / "chromedriver.log", "wb") as log:
        # Own process group: Chromium and its helpers go with chromedriver, whatever happens.
        driver = start_process([CHROMEDRIVER, f"--port={port}", "--allowed-ips=127.0.0.1"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = WebDriver(f"http://127.0.0.1:{port}")
    try:
        try:
            wait_until_ready(lambda: _driver_ready(client), "chromedriver", WAIT_S, driver, interval_s=0.1)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}:\n{(folder / 'chromedriver.log').read_text()[-2000:]}")
        client.start(CHROMIUM, [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={folder / 'profile'}", "--window-size=1000,860",
            # Belt and braces for "loopback only": no host name resolves except 127.0.0.1.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        yield client
    finally:
        with contextlib.suppress(RuntimeError, requests.RequestException):
            client.quit()
        stop_process(driver, 10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # any Chromium helper left in the group


def _shown(browser: WebDriver) -> dict:
    return browser.js("""
        const img = document.querySelector('#model-input img');
        return {
          prediction: document.getElementById('prediction').textContent,
          confidence: document.getElementById('confidence').textContent,
          paths: [...document.querySelectorAll('#paths li .path')].map((e) => e.textContent),
          pcts: [...document.querySelectorAll('#paths li .pct')].map((e) => e.textContent),
          bars: document.querySelectorAll('#paths li .bar span').length,
          imageSize: [img.naturalWidth, img.naturalHeight],
          uploadShown: !document.getElementById('upload-preview').hidden,
          resultShown: !document.getElementById('result').hidden,
        };""")


def _expected_text(text: str) -> str:
    return text or "(nothing read)"


def _wait_for_read(browser: WebDriver, count: int) -> None:
    state = browser.wait_for(f"""
        const b = document.body.dataset;
        return (b.state === 'error' || (b.state === 'done' && b.reads === '{count}')) && b.state;""")
    assert state == "done", browser.js("return document.getElementById('status').textContent")


def test_page_reads_a_typed_word_and_an_uploaded_image_in_chromium(browser, server: Server, tmp_path):
    browser.open(f"{server.url}/")
    assert browser.js("return document.title") == "word-ocr"

    browser.type("#word", "Game")
    browser.click("#read-word")
    _wait_for_read(browser, 1)
    shown = _shown(browser)
    expected = v1_predict(server, {"instances": [{"word": "game"}]}).json()["predictions"][0]
    assert shown["resultShown"] and not shown["uploadShown"]
    assert shown["prediction"] == _expected_text(expected["pred_text"])
    assert shown["paths"] == [p or "\u2014" for p in expected["top_3_paths"]]
    assert len(shown["pcts"]) == 3 and shown["bars"] == 3
    assert shown["confidence"].startswith("confidence ") and shown["confidence"].endswith("%")
    assert shown["imageSize"] == [TINY_SPEC.width, TINY_SPEC.height]  # the model input, not a preview

    upload = tmp_path / "river.png"
    upload.write_bytes(base64.b64decode(word_image_b64("river")))
    browser.choose_file("#file", upload)
    _wait_for_read(browser, 2)
    shown = _shown(browser)
    expected = v1_predict(server, {"instances": [{"image_b64": word_image_b64("river")}]}).json()["predictions"][0]
    assert shown["uploadShown"]
    assert browser.js("return document.querySelector('#upload-preview img').naturalWidth") > 0
    assert shown["prediction"] == _expected_text(expected["pred_text"])
    assert len(shown["paths"]) == 3 and shown["bars"] == 3
    assert shown["imageSize"] == [TINY_SPEC.width, TINY_SPEC.height]
    browser.screenshot(SCREENSHOT)


def test_page_shows_the_servers_reason_when_a_word_is_refused(browser, server: Server):
    browser.open(f"{server.url}/")
    browser.type("#word", "game!")
    browser.click("#read-word")
    browser.wait_for("return document.body.dataset.state === 'error'")
    message = browser.js("return document.getElementById('status').textContent")
    assert "outside the alphabet" in message
    assert browser.js("return document.getElementById('result').hidden") is True
    assert browser.js("return document.getElementById('read-word').disabled") is False
