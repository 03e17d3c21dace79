#!/usr/bin/env python3
"""`trailsight report` in a real browser (part of `make test`, target `report-test`).

Simulates a small scenario (3 days, one region: an IAM burst, a throttling storm, a maintenance
gap: a call-rate spike, an error-rate spike and a drop), writes its report, opens it in headless
Chromium (Debian's `chromium`, driven through Debian's `chromedriver` by Selenium: nothing is
downloaded), and checks that:
  - the page loaded, with one section per insight (the count the page states) and at least one
    insight of each of the three kinds;
  - every insight has its chart: an <svg class="chart"> that is laid out (non-zero size) with
    its per-minute bars;
  - the browser logged no error (console errors, refused loads) and loaded no resource at all
    (the file is self-contained), and the page holds no script element;
  - at phone width (390 px) the page does not overflow sideways (charts scroll in their boxes).
Screenshots go to OUT (default out/report): the page at 1280 px and 390 px, the overview, the
first insight's section and the first drop's (docs/img/report-*.png are copies of the last two).

Then the chat alert of the scenario's first Start, as the detect function publishes it
(`trailsight replay --format alerts`: the Amazon Q Developer custom notification), drawn the way
a chat client shows one (title, description with inline code, next steps) into
OUT/chat-alert.png (docs/img/chat-alert.png is a copy): the page must hold the notification's
title, every next step, and the values from the logs as inline code, and log no browser error.

    python tests/report/browser_test.py --trailsight target/debug/trailsight [--out out/report]
"""

import argparse
import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


def run(*args):
    print("==>", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True)


def browser(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def check_page(driver, url):
    driver.get(url)
    if driver.execute_script("return document.readyState") != "complete":
        fail("the page did not finish loading")
    stated = int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-insights"))
    sections = driver.find_elements(By.CSS_SELECTOR, "section.insight")
    if stated == 0 or len(sections) != stated:
        fail(f"{len(sections)} insight sections for {stated} insights stated")
    kinds = {s.find_element(By.CSS_SELECTOR, "h2 .tag").text for s in sections}
    for kind in ("call-rate spike", "call-rate drop", "error-rate spike"):
        if kind not in kinds:
            fail(f"no {kind} in the report of the scenario (found {sorted(kinds)})")
    for section in sections:
        ident = section.get_attribute("id")
        charts = section.find_elements(By.CSS_SELECTOR, "figure.insight-chart svg.chart")
        if len(charts) != 1:
            fail(f"{ident}: {len(charts)} insight charts")
        size = charts[0].size
        if size["width"] < 100 or size["height"] < 50:
            fail(f"{ident}: its chart is not laid out ({size})")
        bars = charts[0].find_elements(By.CSS_SELECTOR, "g.counts rect")
        if not bars:
            fail(f"{ident}: its chart has no per-minute bars")
        if not section.find_elements(By.CSS_SELECTOR, "svg.chart rect.episode"):
            fail(f"{ident}: no episode shaded")
        if not section.find_element(By.CSS_SELECTOR, "p.sentence").text.strip():
            fail(f"{ident}: no explaining sentence")
    scripts = driver.execute_script("return document.scripts.length")
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    if scripts or resources:
        fail(f"the page has {scripts} scripts and loaded {resources}")
    errors = [e for e in driver.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
    if errors:
        fail(f"browser errors: {errors}")
    return sections


def chat_page(notification):
    """A chat message of `notification` (the custom notification schema), as Slack draws one:
    the app, the bold title, the description's client markdown (`code`, *bold*, line breaks),
    the next steps as a list. Everything is escaped first."""
    content = notification["content"]

    def markdown(text):
        text = html.escape(text)
        text = re.sub(r"`([^`]*)`", r"<code>\1</code>", text)
        text = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", text)
        return text.replace("\n", "<br>")

    steps = "".join(f"<li>{markdown(step)}</li>" for step in content.get("nextSteps", []))
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font: 15px/1.46 -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 0;
       background: #fff; color: #1d1c1d; }}
.message {{ display: flex; gap: 10px; padding: 16px 20px; max-width: 760px; }}
.avatar {{ width: 36px; height: 36px; border-radius: 6px; background: #232f3e; color: #ff9900;
          font-weight: 700; display: flex; align-items: center; justify-content: center; }}
.app {{ font-weight: 900; }} .badge {{ font-size: 10px; background: #e8e8e8; padding: 1px 4px;
  border-radius: 3px; margin-left: 4px; color: #616061; }}
.card {{ border-left: 4px solid #d13212; padding: 2px 0 2px 12px; margin-top: 6px; }}
.title {{ font-weight: 700; margin-bottom: 4px; }}
code {{ font: 12px Menlo, Consolas, monospace; background: #f6f6f6; border: 1px solid #e0e0e0;
        border-radius: 3px; padding: 1px 3px; color: #c01343; overflow-wrap: anywhere; }}
ul {{ margin: 6px 0 0 0; padding-left: 20px; }}
</style></head><body><div class="message" id="message"><div class="avatar">Q</div><div>
<div><span class="app">Amazon Q Developer</span><span class="badge">APP</span></div>
<div class="card"><div class="title" id="title">{markdown(content["title"])}</div>
<div id="description">{markdown(content["description"])}</div>
<div><b>Next steps</b><ul id="steps">{steps}</ul></div></div></div></div></body></html>"""


def chat_alert(trailsight, data, out):
    """The first Start's chat alert, drawn and checked; its screenshot."""
    replay = subprocess.run([str(trailsight), "replay", "--format", "alerts", str(data)],
                            check=True, stdout=subprocess.PIPE, text=True)
    alerts = [json.loads(line) for line in replay.stdout.splitlines() if line.strip()]
    starts = [a for a in alerts if not a["subject"].startswith("Ended")]
    if not starts:
        fail("replay --format alerts gave no Start alert")
    notification = starts[0]["chat"]
    if notification.get("version") != "1.0" or notification.get("source") != "custom":
        fail(f"not a custom notification: {notification}")
    page = out / "chat-alert.html"
    page.write_text(chat_page(notification))
    driver = browser(800, 600)
    try:
        driver.get(page.as_uri())
        title = driver.find_element(By.ID, "title").text
        if title != notification["content"]["title"].replace("`", "").replace("*", ""):
            fail(f"chat title {title!r} is not the notification's")
        steps = driver.find_elements(By.CSS_SELECTOR, "#steps li")
        if len(steps) != len(notification["content"]["nextSteps"]) or not steps:
            fail("the next steps are not all shown")
        if not driver.find_elements(By.CSS_SELECTOR, "#description code"):
            fail("no value from the logs is shown as inline code")
        errors = [e for e in driver.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
        if errors:
            fail(f"browser errors: {errors}")
        driver.find_element(By.ID, "message").screenshot(str(out / "chat-alert.png"))
    finally:
        driver.quit()
    return len(alerts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trailsight", required=True, type=Path)
    parser.add_argument("--out", default=Path("out/report"), type=Path)
    args = parser.parse_args()
    started = time.monotonic()
    out = args.out.resolve()
    data = out / "scenario"
    subprocess.run(["rm", "-rf", str(data)], check=True)
    out.mkdir(parents=True, exist_ok=True)
    run(args.trailsight, "simulate", "--out", data, "--days", "3", "--regions", "us-east-1",
        "--inject", "iam-burst@1d6h", "--inject", "throttling-storm@1d15h",
        "--inject", "maintenance-gap@2d2h")
    report = out / "report.html"
    run(args.trailsight, "report", data, "-o", report)
    url = report.as_uri()

    driver = browser(1280, 900)
    try:
        sections = check_page(driver, url)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(height + 120, 16000))
        driver.save_screenshot(str(out / "report-1280.png"))
        sections[0].screenshot(str(out / "insight-1280.png"))
        drops = [
            s
            for s in sections
            if s.find_element(By.CSS_SELECTOR, "h2 .tag").text == "call-rate drop"
        ]
        drops[0].screenshot(str(out / "drop-1280.png"))
        driver.find_element(By.CSS_SELECTOR, "section.overview").screenshot(
            str(out / "overview-1280.png")
        )
        count = len(sections)
    finally:
        driver.quit()

    # A phone: headless windows are at least 500 px wide, so the screen is emulated.
    driver = browser(500, 844)
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
        )
        check_page(driver, url)
        if driver.execute_script("return window.innerWidth") != 390:
            fail("the phone's width was not emulated")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        if overflow > 1:
            fail(f"at 390 px the page is {overflow} px wider than the screen")
        driver.save_screenshot(str(out / "report-390.png"))
    finally:
        driver.quit()
    alerts = chat_alert(args.trailsight, data, out)
    print(
        f"report-test: {count} insights, each with its chart; {alerts} chat alerts, the first "
        f"drawn; no browser errors; screenshots in {out} ({time.monotonic() - started:.1f}s)"
    )


if __name__ == "__main__":
    main()
