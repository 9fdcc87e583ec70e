"""The project's Chromium (digitglyph.browser): Playwright's own settings kept, the unseen browser interface off."""

from __future__ import annotations

import psutil
import pytest

from digitglyph.browser import HEADLESS_UNSEEN_FEATURES, chromium_args, playwright_disabled_features

pytestmark = pytest.mark.browser


def browser_command_lines() -> list[list[str]]:
    """The command lines of the Chromium browser processes started by this test run (renderers and helpers left out)."""
    lines = []
    for process in psutil.Process().children(recursive=True):
        try:
            line = process.cmdline()
        except psutil.Error:
            continue
        if line and "chromium" in line[0] and not any(part.startswith("--type=") for part in line):
            lines.append(line)
    return lines


def features_switched_off(line: list[str]) -> list[list[str]]:
    return [part.split("=", 1)[1].split(",") for part in line if part.startswith("--disable-features=")]


def test_playwrights_disabled_features_are_read_from_its_driver():
    features = playwright_disabled_features()
    assert "PaintHolding" in features and "HttpsUpgrades" in features  # two Playwright has long switched off
    assert all(feature.replace("-", "").isalnum() for feature in features)
    assert features_switched_off(chromium_args()) == [[*features, *HEADLESS_UNSEEN_FEATURES]]


def test_the_launched_browser_keeps_playwrights_features_off_and_preloads_no_address_bar(browser):
    (line,) = browser_command_lines()
    *playwrights, last = features_switched_off(line)
    assert playwrights, "Playwright passes its own --disable-features before ours"
    assert set(playwrights[0]) <= set(last), "Chromium reads only the last --disable-features"
    assert set(HEADLESS_UNSEEN_FEATURES) <= set(last)

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto("data:text/html,<p>hello</p>")
        session = browser.new_browser_cdp_session()
        targets = session.send("Target.getTargets")["targetInfos"]
        session.detach()
    finally:
        context.close()
    assert [target["type"] for target in targets if target["url"].startswith("data:")] == ["page"]
    interface = [target["url"] for target in targets if target["url"].startswith("chrome://")]
    assert not interface, f"the headless browser built pages of its own interface: {interface}"
