#!/usr/bin/env python3
"""gantryd's HTTP side as a browser sees it: /live, /ready and /metrics opened in headless Chromium.

    python3 scripts/with_broker.py -- python3 scripts/http_browser_check.py [--screenshot metrics.png]

Enqueues a job on GANTRY_URL first, so /metrics must show that queue's gauges (read from the database when the
page is fetched). Exits 1 naming what a user would not have seen. Needs Debian's chromium and chromium-driver and
Python's selenium (.ci/run installs them).
"""
import argparse
import json
import os
import socket
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def enqueue(url: str, queue: str) -> None:
    host, port = url.removeprefix("gantry://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        request = {"jsonrpc": "2.0", "id": 1, "method": "enqueue", "params": {"type": "browser.check", "queue": queue}}
        connection.sendall((json.dumps(request) + "\n").encode())
        answer = json.loads(connection.makefile().readline())
        if "result" not in answer:
            sys.exit(f"http_browser_check: enqueue failed: {answer}")


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,700"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", help="save the /metrics page as PNG here")
    options = parser.parse_args()
    http, rpc = os.environ.get("GANTRY_HTTP"), os.environ.get("GANTRY_URL")
    if not http or not rpc:
        sys.exit("http_browser_check: set GANTRY_HTTP and GANTRY_URL (run it under scripts/with_broker.py)")
    enqueue(rpc, "browser_check")
    problems = []
    driver = browser()
    try:
        expectations = {
            "/live": ["live"],
            "/ready": ["ready"],
            "/metrics": ['gantry_queue_jobs{queue="browser_check",state="available"} 1', "gantry_connections"],
        }
        for path, wanted in expectations.items():
            driver.get(f"http://{http}{path}")
            text = driver.find_element(By.TAG_NAME, "body").text
            for phrase in wanted:
                if phrase not in text:
                    problems.append(f"{path} does not show {phrase!r}; it shows: {text[:300]!r}")
            if path == "/metrics" and options.screenshot:
                driver.save_screenshot(options.screenshot)
    finally:
        driver.quit()
    for problem in problems:
        print(f"http_browser_check: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"http_browser_check: /live, /ready and /metrics shown in Chromium ({len(expectations)} pages)")


if __name__ == "__main__":
    main()
