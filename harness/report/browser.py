"""Open a generated HTML page in headless Chromium and say whether it really works: loaded,
no console errors or failed resources, every figure decoded, plus a full-page screenshot.

Uses Debian's chromium and chromium-driver through Selenium; nothing is downloaded at run time.
`HFTCHAOS_CHROMIUM` and `HFTCHAOS_CHROMEDRIVER` point at other binaries.
"""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import settings

CHROMIUM = settings.CHROMIUM.default
CHROMEDRIVER = settings.CHROMEDRIVER.default
PAGE_LOAD_TIMEOUT_S = 60
WINDOW_WIDTH = 1400

# Installed before any page script runs: records script errors, rejected promises and
# resources (images, styles) that failed to load. Resource errors do not bubble, hence the
# capture phase on window.
_CAPTURE_ERRORS = """
window.__hftchaosErrors = [];
window.addEventListener('error', function (event) {
  var target = event.target;
  if (target && target !== window && (target.src || target.href)) {
    var url = String(target.src || target.href);
    if (url.length > 120) { url = url.slice(0, 120) + '...'; }
    window.__hftchaosErrors.push('failed to load ' + target.tagName.toLowerCase() + ': ' + url);
  } else {
    window.__hftchaosErrors.push('script error: ' + (event.message || 'unknown'));
  }
}, true);
window.addEventListener('unhandledrejection', function (event) {
  window.__hftchaosErrors.push('unhandled rejection: ' + String(event.reason));
});
"""

_FIGURE_STATE = """
var images = Array.from(document.querySelectorAll('img.figure'));
return {
  ready: document.readyState,
  loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
  total: images.length,
  errors: window.__hftchaosErrors || [],
};
"""


@dataclass
class PageCheck:
    loaded: bool
    errors: list[str] = field(default_factory=list)
    figures: int = 0  # <img class="figure"> that decoded (naturalWidth > 0)
    broken_figures: int = 0

    @property
    def ok(self) -> bool:
        return self.loaded and not self.errors and self.broken_figures == 0


def _binary(setting: settings.Setting) -> str | None:
    candidate = setting.value()
    return candidate if Path(candidate).exists() else shutil.which(Path(candidate).name)


def chromium_available() -> bool:
    """True when Chromium, its driver and Selenium are all installed."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    chromium = _binary(settings.CHROMIUM)
    chromedriver = _binary(settings.CHROMEDRIVER)
    return chromium is not None and chromedriver is not None


def _start_driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _binary(settings.CHROMIUM) or CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # runs as root in CI containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={WINDOW_WIDTH},1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path keeps Selenium Manager from trying to download one.
    service = Service(executable_path=_binary(settings.CHROMEDRIVER))
    return webdriver.Chrome(options=options, service=service)


def check_page(html_path: Path, screenshot: Path) -> PageCheck:
    """Open `html_path` in headless Chromium, judge it and write a full-page PNG `screenshot`."""
    from selenium.common.exceptions import WebDriverException

    driver = _start_driver()
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _CAPTURE_ERRORS})
        try:
            driver.get(html_path.resolve().as_uri())
        except WebDriverException as error:
            return PageCheck(loaded=False, errors=[f"page did not load: {error.msg}"])
        state = driver.execute_script(_FIGURE_STATE)
        errors = list(state["errors"]) + _console_errors(driver)
        _full_page_screenshot(driver, screenshot)
        return PageCheck(
            loaded=state["ready"] == "complete",
            errors=list(dict.fromkeys(errors)),  # de-duplicated, in order
            figures=int(state["loaded"]),
            broken_figures=int(state["total"]) - int(state["loaded"]),
        )
    finally:
        driver.quit()


def _console_errors(driver: Any) -> list[str]:
    return [
        f"console: {entry['message']}"
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
    ]


def _full_page_screenshot(driver: Any, screenshot: Path) -> None:
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": clip},
    )
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
