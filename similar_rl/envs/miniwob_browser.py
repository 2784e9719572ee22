"""Offline headless Chromium for MiniWoB++: browser paths, Chromium flags and clear start-up errors.

Farama ``miniwob`` builds its Chrome options inline and has no switch for extra flags, and without
``MINIWOB_CHROME_BINARY``/``MINIWOB_CHROMEDRIVER`` Selenium tries to download a browser. Here, without
patching ``miniwob`` or ``selenium`` globally, :func:`offline_env_class` derives from a MiniWoB env class
one whose :class:`OfflineSeleniumInstance` starts the browser of a :class:`BrowserConfig`.

Only :func:`set_default_browser_env` touches global state: it sets the two ``MINIWOB_*`` variables to the
Debian paths when both are unset (so plain ``gymnasium.make("miniwob/...")`` elsewhere stays offline too).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from miniwob.selenium_instance import SeleniumInstance
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.wait import WebDriverWait

from similar_rl.envs.base import EnvFailure

logger = logging.getLogger(__name__)

DEFAULT_CHROME_BINARY = "/usr/bin/chromium"
DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = (
    "Install Debian's browser with: bash scripts/install_browser.sh "
    "(or: sudo apt-get install -y chromium chromium-driver)"
)

#: Flags added to miniwob's own (headless, disable-gpu, no-sandbox): no network chatter, no shared-memory limits.
OFFLINE_CHROME_FLAGS: tuple[str, ...] = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
)

_SELECT_OPTIONS_JS = """
var out = [];
Object.keys(core.previousDOMInfo).forEach(function (ref) {
  var el = core.previousDOMInfo[ref];
  if (el instanceof HTMLSelectElement) {
    out.push([+ref, Array.from(el.options).map(function (o) { return o.text; }), el.selectedIndex]);
  }
});
return out;
"""
# Run before each episode: drop focus and selection left over from the previous episode.
_CLEAR_FOCUS_JS = """
if (document.activeElement && document.activeElement !== document.body) { document.activeElement.blur(); }
if (window.getSelection) { window.getSelection().removeAllRanges(); }
"""
# Run before FOCUS_ELEMENT_AND_TYPE_TEXT when typing replaces: empty the target's text (not <select>s).
_CLEAR_VALUE_JS = """
var el = core.previousDOMInfo[arguments[0]];
if (el && (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement)) { el.value = ''; }
"""
# Run after each episode starts: a blinking text caret would make screenshots depend on timing.
_HIDE_CARET_JS = """
if (!document.getElementById('similar-rl-hide-caret')) {
  var style = document.createElement('style');
  style.id = 'similar-rl-hide-caret';
  style.textContent = '* { caret-color: transparent !important; }';
  document.head.appendChild(style);
}
"""


def set_default_browser_env() -> None:
    """Point miniwob at Debian's chromium/chromedriver when neither ``MINIWOB_*`` variable is set."""
    if not os.environ.get("MINIWOB_CHROME_BINARY") and not os.environ.get("MINIWOB_CHROMEDRIVER"):
        os.environ["MINIWOB_CHROME_BINARY"] = DEFAULT_CHROME_BINARY
        os.environ["MINIWOB_CHROMEDRIVER"] = DEFAULT_CHROMEDRIVER


@dataclass(frozen=True)
class BrowserConfig:
    """Where the browser is and how it is started.

    Args:
        chrome_binary: Chromium executable; default ``$MINIWOB_CHROME_BINARY`` or ``/usr/bin/chromium``.
        chromedriver: ChromeDriver executable; default ``$MINIWOB_CHROMEDRIVER`` or ``/usr/bin/chromedriver``.
        extra_args: Chromium flags added to miniwob's; default :data:`OFFLINE_CHROME_FLAGS`.
        hide_caret: make text carets transparent (a blinking caret makes screenshots depend on timing).
        type_replaces: ``type(ref, text)`` (FOCUS_ELEMENT_AND_TYPE_TEXT) first empties the input, like a form
            fill, so a wrong entry can be corrected; False keeps miniwob's behaviour (append to the text).

    Example:
        >>> cfg = BrowserConfig(chrome_binary="/opt/chromium", chromedriver="/opt/chromedriver")
        >>> cfg.chrome_binary, "--disable-sync" in cfg.extra_args
        ('/opt/chromium', True)
    """

    chrome_binary: str = ""
    chromedriver: str = ""
    extra_args: tuple[str, ...] = field(default=OFFLINE_CHROME_FLAGS)
    hide_caret: bool = True
    type_replaces: bool = True

    def __post_init__(self) -> None:
        binary = self.chrome_binary or os.environ.get("MINIWOB_CHROME_BINARY") or DEFAULT_CHROME_BINARY
        driver = self.chromedriver or os.environ.get("MINIWOB_CHROMEDRIVER") or DEFAULT_CHROMEDRIVER
        object.__setattr__(self, "chrome_binary", binary)
        object.__setattr__(self, "chromedriver", driver)
        object.__setattr__(self, "extra_args", tuple(self.extra_args))

    def check(self) -> None:
        """Raise :class:`EnvFailure` if either executable is missing or not executable."""
        for what, path in (("chromium", self.chrome_binary), ("chromedriver", self.chromedriver)):
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise EnvFailure(
                    f"cannot start the MiniWoB++ browser: {what} not found or not executable at {path!r} "
                    f"(chromium={self.chrome_binary!r}, chromedriver={self.chromedriver!r}). {INSTALL_HINT}; "
                    "or point MINIWOB_CHROME_BINARY and MINIWOB_CHROMEDRIVER (both) at your own binaries."
                )


class OfflineSeleniumInstance(SeleniumInstance):
    """A ``SeleniumInstance`` started with a :class:`BrowserConfig` (same behaviour otherwise)."""

    def __init__(self, *args: Any, browser: BrowserConfig, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.browser = browser

    def create_driver(self) -> None:
        """Start Chromium through ChromeDriver, load the task page and wait for its sync screen."""
        if hasattr(self, "driver"):
            raise RuntimeError(f"MiniWoB instance {self.index} already has a driver")
        self.browser.check()
        options = webdriver.ChromeOptions()
        own = ("headless", "disable-gpu", "no-sandbox") if self.headless else ("app=" + self.url,)
        for arg in (*own, *self.browser.extra_args):
            options.add_argument(arg)
        options.binary_location = self.browser.chrome_binary
        service = ChromeService(executable_path=self.browser.chromedriver)
        try:
            self.driver = webdriver.Chrome(service=service, options=options)
        except WebDriverException as exc:
            raise EnvFailure(
                f"chromium/chromedriver failed to start (chromium={self.browser.chrome_binary!r}, "
                f"chromedriver={self.browser.chromedriver!r}): {exc.msg or exc}. {INSTALL_HINT}. "
                "Both must be the same major version (`chromium --version`, `chromedriver --version`)."
            ) from exc
        try:
            self.driver.implicitly_wait(5)
            if self.headless:
                self.driver.get(self.url)
            WebDriverWait(self.driver, 5).until(EC.element_to_be_clickable((By.ID, self.SYNC_SCREEN_ID)))
            self.inner_width, self.inner_height = self.driver.execute_script(
                "return [window.innerWidth, window.innerHeight];"
            )
        except (TimeoutException, WebDriverException) as exc:
            self.driver.quit()
            raise EnvFailure(f"chromium started but the MiniWoB page {self.url} did not load: {exc}") from exc

    def begin_task(self, seed: Any = None) -> None:
        """Start an episode from a clean slate (no focus or selection left over), caret hidden if configured."""
        self.driver.execute_script(_CLEAR_FOCUS_JS)
        super().begin_task(seed=seed)
        if self.browser.hide_caret:
            self.driver.execute_script(_HIDE_CARET_JS)

    def perform(self, action: dict[str, Any] | None, action_space_config: Any) -> None:
        """miniwob's ``perform``; with ``type_replaces``, an element-typing action empties the input first."""
        if action is not None and self.browser.type_replaces:
            kind = action_space_config.action_types[int(action["action_type"])]
            if getattr(kind, "value", kind) == "FOCUS_ELEMENT_AND_TYPE_TEXT":
                self.driver.execute_script(_CLEAR_VALUE_JS, int(action["ref"]))
        super().perform(action, action_space_config)

    def get_observation(self, use_cached_fields: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """miniwob's observation plus ``select_options``: ``{ref: (option texts, selected index)}``."""
        obs, extra = super().get_observation(use_cached_fields=use_cached_fields)
        rows = self.driver.execute_script(_SELECT_OPTIONS_JS) or []
        extra["select_options"] = {int(ref): (tuple(texts), int(index)) for ref, texts, index in rows}
        return obs, extra


class _OfflineBrowserMixin:
    """Mixed in front of a MiniWoB env class: its Selenium instance is an :class:`OfflineSeleniumInstance`."""

    def __init__(self, *args: Any, browser: BrowserConfig | None = None, **kwargs: Any):
        self.browser = browser or BrowserConfig()
        super().__init__(*args, **kwargs)

    def _hard_reset_instance(self) -> None:
        old = getattr(self, "instance", None)
        if old is not None:
            old.close()
        logger.debug("starting chromium for %s", self.instance_kwargs.get("subdomain"))
        self.instance = OfflineSeleniumInstance(index=0, browser=self.browser, **self.instance_kwargs)
        self.instance.start()
        self.instance.wait()


@cache
def offline_env_class(env_class: type) -> type:
    """The subclass of a MiniWoB env class that starts its browser offline (cached per class)."""
    return type(env_class.__name__, (_OfflineBrowserMixin, env_class), {"__module__": __name__})
