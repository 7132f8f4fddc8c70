#!/usr/bin/env python3
"""The web dashboard as a user sees it: sign-in, every page and every action, in headless Chromium.

    python3 scripts/dashboard_browser_test.py [--gantryd PATH] [--screenshots DIR]

Starts two throwaway brokers (scripts/with_broker.py's start/stop, each on its own embedded PostgreSQL): a
"secured" one with admin, viewer and worker tokens from the environment, and an "open" one without tokens. Sets
up jobs, a dead job (reserved and nacked by worker w-1, whose connection stays open), a job type with an args
schema and a cron schedule over JSON-RPC, then walks the dashboard: sign-in, overview, jobs and their filters,
a job's page and its actions, bulk actions, queues, workers, cron, job types and the run form, the audit log,
a viewer's read-only view, CSRF and bearer tokens, sign-out, and the open broker. Saves a PNG of each page
(default: a temporary folder, printed at the end). Exits 0 when everything passed, else 1 naming each failure
as what a user would have seen instead. Every wait has a time limit; both brokers and the browser are always
stopped. Needs Debian's chromium and chromium-driver and Python's selenium.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException, TimeoutException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import with_broker  # noqa: E402

ADMIN = "dashboard-admin-token-0123456789"
VIEWER = "dashboard-viewer-token-0123456789"
WORKER = "dashboard-worker-token-0123456789"
ADMIN_NAME, VIEWER_NAME = "gantry_admin_token", "gantry_viewer_token"
WAIT = 10            # seconds for an element, a navigation, a socket answer
OVERALL = 240        # seconds for the whole run, however it goes
INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_id": {"type": "integer", "description": "The invoice to pay"},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"], "default": "EUR"},
        "note": {"type": "string"},
    },
    "required": ["invoice_id", "amount"],
}


class Overtime(Exception):
    pass


# ---- JSON-RPC over a socket ---------------------------------------------------------------------------------

class RpcError(Exception):
    pass


class Rpc:
    """One connection: requests answered by id; the broker's notifications (method, no id) kept aside."""

    def __init__(self, address, hello=None):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        self.buffer = b""
        self.next_id = 0
        self.notifications = []
        if hello is not None:
            self.call("hello", hello)

    def _line(self, deadline):
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line from the broker in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no line from the broker in time") from None
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            request["params"] = params
        self.sock.settimeout(WAIT)
        self.sock.sendall((json.dumps(request) + "\n").encode())
        deadline = time.monotonic() + WAIT
        while True:
            message = self._line(deadline)
            if "id" not in message and "method" in message:
                self.notifications.append(message)
                continue
            if message.get("id") != self.next_id:
                continue
            if "error" in message:
                raise RpcError(f"{method}: {message['error'].get('message')}")
            return message["result"]

    def wait_notification(self, method, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            for message in self.notifications:
                if message.get("method") == method:
                    return message
            try:
                message = self._line(deadline)
            except TimeoutError:
                return None
            if "id" not in message and "method" in message:
                self.notifications.append(message)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- HTTP without a browser (urllib, no redirects followed) ------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *arguments, **keywords):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def http(method, url, form=None, headers=None):
    """(status, headers, body) of one request; a redirect is returned, not followed."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with _OPENER.open(request, timeout=WAIT) as response:
            return response.status, response.headers, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")


# ---- the browser ----------------------------------------------------------------------------------------------

def browser():
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--no-proxy-server", "--disable-gpu"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("unhandledPromptBehavior", "ignore")
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    return driver


def replaced(error):
    """Whether a WebDriver error means the element left the document (a new page, or the live refresh)."""
    if isinstance(error, StaleElementReferenceException):
        return True
    return isinstance(error, WebDriverException) and "does not belong to the document" in (error.msg or "")


def gone(element):
    """An expected condition: `element` is no longer in the page (the browser went on to the next one)."""
    def check(_driver):
        try:
            element.is_enabled()
            return False
        except WebDriverException as error:
            if replaced(error):
                return True
            raise
    return check


class Failures(Exception):
    """A check gives up early (its reason is already recorded)."""


class Check:
    """One numbered check: its failures, described as what the user saw."""

    def __init__(self, test, name):
        self.test, self.name, self.problems = test, name, []

    def expect(self, condition, problem):
        if not condition:
            self.problems.append(problem)
        return bool(condition)

    def require(self, condition, problem):
        if not self.expect(condition, problem):
            raise Failures()


class DashboardTest:
    def __init__(self, driver, secured, open_broker, shots):
        self.driver = driver
        self.base = f"http://{secured['http']}"
        self.open_base = f"http://{open_broker['http']}"
        self.secured, self.open = secured, open_broker
        self.shots = shots
        self.results = []
        self.ids = {}
        self.admin_cookie = None
        self.viewer_cookie = None

    # -- helpers --

    def wait(self, timeout=WAIT):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1)

    def path(self):
        return urllib.parse.urlparse(self.driver.current_url).path

    def query(self):
        return urllib.parse.parse_qs(urllib.parse.urlparse(self.driver.current_url).query)

    def open_page(self, path, base=None):
        self.driver.get((base or self.base) + path)
        self.wait().until(lambda d: d.execute_script("return document.readyState") == "complete")

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def present(self, css):
        return len(self.finds(css)) > 0

    @staticmethod
    def steady(function):
        """function() again when the live refresh replaced an element under it."""
        for attempt in range(5):
            try:
                return function()
            except WebDriverException as error:
                if attempt == 4 or not replaced(error):
                    raise
                time.sleep(0.2)

    def text(self, css, default=None):
        def read():
            try:
                return self.find(css).text.strip()
            except NoSuchElementException:
                return default
        return self.steady(read)

    def body_text(self, limit=300):
        try:
            return " ".join(self.find("body").text.split())[:limit]
        except WebDriverException:
            return "(no page)"

    def wait_for(self, css, timeout=WAIT):
        return self.wait(timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))

    def click(self, css, confirm=False):
        """Clicks the element (found again if the live refresh replaced it) and waits for the next page."""
        for attempt in range(4):
            old = self.find("html")
            try:
                element = self.wait().until(EC.element_to_be_clickable((By.CSS_SELECTOR, css)))
                element.click()
            except WebDriverException as error:
                if attempt == 3 or not replaced(error):
                    raise
                time.sleep(0.2)
                continue
            if confirm:
                self.wait().until(EC.alert_is_present())
                self.driver.switch_to.alert.accept()
            self.wait().until(gone(old))
            self.wait().until(lambda d: d.execute_script("return document.readyState") == "complete")
            return

    def fill(self, css, value):
        element = self.wait_for(css)
        element.clear()
        element.send_keys(str(value))

    def shot(self, name):
        try:
            self.driver.save_screenshot(str(self.shots / f"{name}.png"))
        except WebDriverException as error:
            print(f"dashboard_browser_test: could not save {name}.png: {error}", file=sys.stderr)

    def expect_no_messages(self, c, where):
        """A page nobody acted on shows neither a notice nor a problem box."""
        for css in ("#notice", "#problem"):
            if self.present(css):
                c.expect(False, f"{where} shows a {css} box reading {self.text(css)!r} though nothing was done or went wrong")

    def expect_notice(self, c, wanted, what):
        notice = self.text("#notice")
        c.expect(notice is not None and wanted in notice,
                 f"{what} shows the notice {notice!r}, not one saying {wanted!r} (page: {self.body_text()!r})")

    def console_errors(self):
        """Errors the page's scripts or the browser logged (CSP refusals, script errors), but not HTTP statuses."""
        try:
            entries = self.driver.get_log("browser")
        except WebDriverException:
            return []
        return [entry["message"] for entry in entries
                if entry.get("level") == "SEVERE" and "Failed to load resource: the server responded with a status of" not in entry["message"]]

    def rows(self, css):
        """The text of each cell of each row matched by css."""
        return self.steady(lambda: [[cell.text.strip() for cell in row.find_elements(By.CSS_SELECTOR, "td")] for row in self.finds(css)])

    def job_ids_shown(self):
        return self.steady(lambda: [row.get_attribute("data-job") for row in self.finds("tr[data-job]")])

    def admin_rpc(self):
        return self.secured["rpc_admin"]

    def queue_paused(self, queue, rpc=None):
        queues = (rpc or self.admin_rpc()).call("queues.list")["queues"]
        return queues.get(queue, {}).get("paused")

    def session_cookie(self):
        for cookie in self.driver.get_cookies():
            if cookie["name"] == "gantry_session":
                return cookie
        return None

    def run(self, number, title, function):
        check = Check(self, f"{number}. {title}")
        started = time.monotonic()
        try:
            function(check)
        except Failures:
            pass
        except Overtime:
            check.problems.append("the whole run went over its time limit here")
            self.results.append(check)
            raise
        except TimeoutException as error:
            check.problems.append(f"gave up waiting ({(error.msg or 'timeout').strip()}) on {self.driver.current_url}: "
                                  f"the page shows {self.body_text()!r}")
        except Exception as error:  # noqa: BLE001 - a check reports whatever went wrong and the run goes on
            detail = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()[0]
            where = traceback.extract_tb(error.__traceback__)
            line = next((f" (line {frame.lineno})" for frame in reversed(where) if frame.filename == __file__), "")
            try:
                page = f" on {self.driver.current_url}: the page shows {self.body_text()!r}"
            except Exception:  # noqa: BLE001
                page = ""
            check.problems.append(f"stopped by {detail}{line}{page}")
        try:
            for message in self.console_errors():
                check.problems.append(f"the browser console shows an error: {message[:300]}")
        except Exception:  # noqa: BLE001
            pass
        print(f"  {'ok  ' if not check.problems else 'FAIL'} {check.name} ({time.monotonic() - started:.1f} s)", flush=True)
        self.results.append(check)

    # -- the data ------------------------------------------------------------------------------------------------

    def set_up(self):
        rpc = self.admin_rpc()
        rpc.call("types.register", {"type": "invoice.pay", "description": "Pays an invoice with the customer's card",
                                    "queue": "billing", "args_schema": INVOICE_SCHEMA})

        def enqueue(type_, queue, args):
            return rpc.call("enqueue", {"type": type_, "queue": queue, "args": args})["id"]

        self.ids["dead"] = enqueue("invoice.pay", "billing", {"invoice_id": 1, "amount": 10})
        worker = self.secured["rpc_worker"]
        reserved = worker.call("reserve", {"queues": ["billing"], "max": 1})["jobs"]
        if [job["id"] for job in reserved] != [self.ids["dead"]]:
            raise RuntimeError(f"the worker reserved {reserved}, not job {self.ids['dead']}")
        worker.call("nack", {"id": self.ids["dead"], "retry": False, "error": {
            "message": "card declined", "kind": "CardError", "backtrace": ["a.rb:1", "b.rb:2"]}})
        self.ids["mail7"] = enqueue("email.send", "mail", {"user_id": 7, "template": "welcome"})
        self.ids["mail8"] = enqueue("email.send", "mail", {"user_id": 8, "template": "welcome"})
        self.ids["report7"] = enqueue("report.build", "reports", {"user_id": 7, "period": "2026-01"})
        self.ids["thumb"] = enqueue("thumb.make", "media", ["img/1.png"])
        self.ids["invoice2"] = enqueue("invoice.pay", "billing", {"invoice_id": 2, "amount": 20.5})
        self.ids["mail9"] = enqueue("email.send", "mail", {"user_id": 9})
        self.all_ids = [self.ids[k] for k in ("dead", "mail7", "mail8", "report7", "thumb", "invoice2", "mail9")]
        rpc.call("cron.upsert", {"name": "nightly-report", "cron": "0 3 * * *", "type": "report.build",
                                 "args": {"kind": "daily"}, "queue": "reports"})

    # -- the checks ----------------------------------------------------------------------------------------------

    def sign_in(self, token):
        self.open_page("/login")
        self.fill("#token", token)
        self.click("#sign-in")

    def check_sign_in(self, c):
        self.open_page("/")
        c.expect(self.path() == "/login", f"/ did not send a signed-out user to /login; it showed {self.driver.current_url}")
        c.expect(self.query().get("next") == ["/"], f"the sign-in page lost where to go back to: {self.driver.current_url}")
        self.expect_no_messages(c, "the sign-in page")
        self.shot("login")
        self.fill("#token", "not-a-token-this-broker-knows")
        self.click("#sign-in")
        c.expect("not one this broker knows" in (self.text("#problem") or ""),
                 f"a wrong token showed the problem {self.text('#problem')!r}; the page shows {self.body_text()!r}")
        c.expect(self.session_cookie() is None, "a wrong token still got a gantry_session cookie")
        self.fill("#token", ADMIN)
        self.click("#sign-in")
        c.require(self.path() == "/" and self.present("#queues"),
                  f"the admin token did not land on the overview: {self.driver.current_url} shows {self.body_text()!r}")
        c.expect(ADMIN_NAME in (self.text("#who") or ""), f"the header shows {self.text('#who')!r}, not the token name {ADMIN_NAME}")
        cookie = self.session_cookie()
        c.require(cookie is not None, f"no gantry_session cookie after signing in (cookies: {self.driver.get_cookies()})")
        c.expect(cookie.get("httpOnly") is True, f"the gantry_session cookie is not HttpOnly: {cookie}")
        c.expect(cookie.get("sameSite") == "Strict", f"the gantry_session cookie is not SameSite=Strict: {cookie}")
        self.admin_cookie = cookie["value"]

    def check_overview(self, c):
        self.open_page("/")
        self.expect_no_messages(c, "the overview")
        rows = self.steady(lambda: {row.get_attribute("data-queue"): [td.text.strip() for td in row.find_elements(By.CSS_SELECTOR, "td")]
                                    for row in self.finds("#queues tr[data-queue]")})
        c.expect(set(rows) >= {"billing", "mail", "reports", "media"}, f"#queues lists {sorted(rows)}, not billing, mail, reports, media")
        # columns: queue, available, scheduled, reserved, dead, ...
        if "mail" in rows:
            c.expect(rows["mail"][1] == "3", f"#queues shows {rows['mail'][1]!r} available in mail, not 3")
        if "billing" in rows:
            c.expect(rows["billing"][1] == "1" and rows["billing"][4] == "1",
                     f"#queues shows billing as {rows['billing'][:5]}, not 1 available and 1 dead")
        c.expect(self.text("#total-available") == "6", f"the available card shows {self.text('#total-available')!r}, not 6")
        c.expect(self.present("svg#activity-chart"), "no #activity-chart SVG on the overview")
        brokers = self.rows("#brokers tbody tr")
        c.expect(len(brokers) == 1, f"#brokers has {len(brokers)} rows, not 1")
        c.expect(brokers and "(this one)" in brokers[0][0], f"the broker row does not say (this one): {brokers[:1]}")
        self.shot("overview")

    def check_jobs(self, c):
        self.open_page("/jobs")
        expected = sorted(self.all_ids, key=int, reverse=True)
        c.expect(self.job_ids_shown() == expected, f"/jobs shows jobs {self.job_ids_shown()}, not {expected} (newest first)")
        self.expect_no_messages(c, "/jobs")
        pager = [a.text for a in self.finds(".pager a")]
        c.expect(not pager, f"/jobs with {len(expected)} jobs (one page) shows the paging links {pager}")
        self.shot("jobs")

        def filtered(fields, state=None):
            self.open_page("/jobs")
            for name, value in fields.items():
                self.fill(f"#job-filters input[name={name}]", value)
            if state:
                Select(self.find("#job-filters select[name=state]")).select_by_value(state)
            self.click("#job-filters button[type=submit]")
            return self.job_ids_shown()

        mail = [self.ids["mail9"], self.ids["mail8"], self.ids["mail7"]]
        shown = filtered({"queue": "mail"})
        c.expect(shown == mail, f"filtering by queue mail shows {shown}, not {mail}")
        shown = filtered({}, state="dead")
        c.expect(shown == [self.ids["dead"]], f"filtering by state dead shows {shown}, not [{self.ids['dead']}]")
        shown = filtered({"args": '{"user_id": 7}'})
        wanted = [self.ids["report7"], self.ids["mail7"]]
        c.expect(shown == wanted, f'filtering by args {{"user_id": 7}} shows {shown}, not {wanted}')
        c.expect(self.find("#job-filters input[name=args]").get_attribute("value") == '{"user_id": 7}',
                 "the args filter box lost what was typed after filtering")
        c.expect(self.text("#matching") == "2", f'the bulk bar says all {self.text("#matching")!r} jobs match {{"user_id": 7}}, not 2')
        shown = filtered({"args": "{bad"})
        c.expect("not valid JSON" in (self.text("#problem") or ""),
                 f"an invalid args filter {{bad showed the problem {self.text('#problem')!r}; the page shows {self.body_text()!r}")
        c.expect(shown == [], f"an invalid args filter still listed jobs {shown}")

    def check_job(self, c):
        job = self.ids["dead"]
        self.open_page(f"/jobs/{job}")
        c.expect(self.text("#job-state") == "dead", f"job {job} shows the state {self.text('#job-state')!r}, not dead")
        self.expect_no_messages(c, f"job {job}'s page")
        facts = [dt.text.strip() for dt in self.finds("dl.facts dt")]
        empty = [dt for dt in ("lease until", "unique key", "tags", "cancel asked") if dt in facts]
        c.expect(not empty, f"the dead job's facts list {empty} with nothing in them (it has no lease, unique key, tags or cancel)")
        c.expect(not self.present("#job-result"), "the dead job's page shows an empty Result box (it has no result)")
        attempts = self.text("#attempts") or ""
        for wanted in ("card declined", "CardError", "a.rb:1", "b.rb:2", "w-1"):
            c.expect(wanted in attempts, f"#attempts does not show {wanted!r}; it shows {attempts[:300]!r}")
        args_text = self.text("#job-args") or ""
        try:
            c.expect(json.loads(args_text) == {"invoice_id": 1, "amount": 10}, f"#job-args shows {args_text!r}, not the job's args")
        except ValueError:
            c.expect(False, f"#job-args is not JSON: {args_text!r}")
        c.expect("\n" in args_text and '"invoice_id": 1' in args_text, f"#job-args is not pretty-printed: {args_text!r}")
        self.shot("job")
        self.click("#retry")
        self.expect_notice(c, f"Job {job} is available again", "Retry")
        c.expect(self.text("#job-state") == "available", f"after Retry the job shows {self.text('#job-state')!r}, not available")
        self.click("#cancel")
        self.expect_notice(c, f"Job {job} is cancelled", "Cancel")
        c.expect(self.text("#job-state") == "cancelled", f"after Cancel the job shows {self.text('#job-state')!r}, not cancelled")

    def check_bulk(self, c):
        self.open_page("/jobs")
        chosen = [self.ids["thumb"], self.ids["mail9"]]
        for job in chosen:
            def tick(job=job):
                box = self.wait_for(f"input.select-job[value='{job}']")
                if not box.is_selected():
                    box.click()
            self.steady(tick)
        self.click("#bulk-form button[name=action][value=discard]", confirm=True)
        notice = self.text("#notice") or ""
        c.expect("2 of 2" in notice, f"discarding two selected jobs says {notice!r}, not 2 of 2 (page: {self.body_text()!r})")
        shown = self.job_ids_shown()
        c.expect(not set(chosen) & set(shown), f"the discarded jobs {chosen} are still listed: {shown}")
        for job in chosen:
            try:
                self.admin_rpc().call("jobs.get", {"id": job})
                c.expect(False, f"job {job} still exists after Discard")
            except RpcError:
                pass

        self.open_page("/jobs")
        Select(self.find("#job-filters select[name=state]")).select_by_value("cancelled")
        self.click("#job-filters button[type=submit]")
        matching = self.job_ids_shown()
        c.expect(len(matching) >= 1, "no cancelled job to retry (the Cancel of check 4 did not happen?)")
        self.click("#bulk-form button[name=action][value=retry-all]", confirm=True)
        c.require(re.fullmatch(r"/bulk/\d+", self.path()) is not None,
                  f"Retry all matching landed on {self.driver.current_url}, not /bulk/N; the page shows {self.body_text()!r}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            state, done = self.text("#bulk-state"), self.text("#bulk-done")
            if state == "completed":
                break
            time.sleep(0.5)
            self.open_page(self.path())
        self.shot("bulk")
        facts = [dt.text.strip() for dt in self.finds("#bulk dt")]
        c.expect("error" not in facts, f"the bulk action that went well lists an error: {self.text('#bulk')!r}")
        c.expect(state == "completed", f"the bulk action shows {state!r} after 15 s, not completed")
        c.expect(done is not None and done.isdigit() and int(done) >= len(matching) >= 1,
                 f"#bulk-done shows {done!r}, not at least {max(1, len(matching))}")
        for job in matching:
            got = self.admin_rpc().call("jobs.get", {"id": job})["state"]
            c.expect(got == "available", f"job {job} is {got} after Retry all matching, not available")

    def check_queues(self, c):
        self.open_page("/queues")
        self.expect_no_messages(c, "/queues")
        self.shot("queues")
        self.click("tr[data-queue=billing] button.pause")
        self.expect_notice(c, "Queue billing paused", "Pause")
        row = self.text("tr[data-queue=billing]") or ""
        c.expect("paused" in row, f"after Pause the billing row shows {row!r}, not paused")
        c.expect(self.queue_paused("billing") is True, "after Pause, queues.list says billing is not paused")
        self.click("tr[data-queue=billing] button.resume")
        row = self.text("tr[data-queue=billing]") or ""
        c.expect("running" in row and "paused" not in row, f"after Resume the billing row shows {row!r}, not running")
        c.expect(self.queue_paused("billing") is False, "after Resume, queues.list says billing is still paused")
        self.fill("#limits-form input[name=queue]", "billing")
        self.fill("#limits-form input[name=concurrency]", "3")
        self.click("#limits-form button[type=submit]")
        self.expect_notice(c, "Limits of billing set", "Set limits")
        cells = self.rows("tr[data-queue=billing]")
        c.expect(cells and cells[0][6] == "3", f"after setting concurrency 3 the billing row shows {cells[:1]}, not 3")
        got = self.admin_rpc().call("queues.list")["queues"].get("billing", {}).get("concurrency")
        c.expect(got == 3, f"queues.list says billing's concurrency is {got}, not 3")

    def check_workers(self, c):
        self.open_page("/workers")
        c.require(self.present('#workers tr[data-worker="w-1"]'),
                  f"#workers has no row for w-1; it shows {self.text('#workers')!r}")
        self.expect_no_messages(c, "/workers")
        links = self.steady(lambda: [a.get_attribute("href") for a in self.finds('tr[data-worker="w-1"] td.num a')])
        c.expect(not links, f"w-1 holds no jobs, yet its holds cell links to {links}")
        self.shot("workers")
        self.click('tr[data-worker="w-1"] button.quiet')
        self.expect_notice(c, "Told worker w-1 to take no new jobs (1 connected)", "Quiet")
        line = self.secured["rpc_worker"].wait_notification("worker.quiet", timeout=WAIT)
        c.expect(line is not None, f"the worker's connection got no worker.quiet line within {WAIT} s")
        row = self.text('tr[data-worker="w-1"]') or ""
        c.expect("quiet" in row, f"after Quiet the w-1 row shows {row!r}, not quiet")

    def check_cron(self, c):
        self.open_page("/cron")
        c.require(self.present('tr[data-schedule="nightly-report"]'), f"/cron has no nightly-report row: {self.text('#schedules')!r}")
        self.expect_no_messages(c, "/cron")
        never = self.finds('tr[data-schedule="nightly-report"] a[href="/jobs/"]')
        c.expect(not never, "a schedule that never ran shows an empty last-job link to /jobs/")
        self.shot("cron")
        self.click('tr[data-schedule="nightly-report"] button.trigger')
        notice = self.text("#notice") or ""
        found = re.search(r"job (\d+)", notice)
        c.expect(found is not None, f"Run now says {notice!r}, naming no job; the page shows {self.body_text()!r}")
        if found:
            try:
                job = self.admin_rpc().call("jobs.get", {"id": found.group(1)})
                c.expect(job["type"] == "report.build", f"the job Run now made is a {job['type']}, not report.build")
                c.expect(self.present(f'tr[data-schedule="nightly-report"] a[href="/jobs/{found.group(1)}"]'),
                         f"the schedule row does not link its last job {found.group(1)}")
            except RpcError as error:
                c.expect(False, f"the job Run now named does not exist: {error}")
        self.click('tr[data-schedule="nightly-report"] button.pause')
        row = self.text('tr[data-schedule="nightly-report"]') or ""
        c.expect("paused" in row, f"after Pause the schedule row shows {row!r}, not paused")
        self.click('tr[data-schedule="nightly-report"] button.resume')
        row = self.text('tr[data-schedule="nightly-report"]') or ""
        c.expect("active" in row, f"after Resume the schedule row shows {row!r}, not active")

    def fill_invoice(self, invoice_id, amount):
        self.fill('#args-fields [data-path="args.invoice_id"]', invoice_id)
        self.fill('#args-fields [data-path="args.amount"]', amount)

    def check_types(self, c):
        self.open_page("/types")
        c.require(self.present('#types tr[data-type="invoice.pay"]'), f"/types does not list invoice.pay: {self.text('#types')!r}")
        self.shot("types")
        self.open_page("/types/invoice.pay")
        self.wait_for('#args-fields [data-path="args.invoice_id"]')
        paths = {e.get_attribute("data-path") for e in self.finds("#args-fields [data-path]")}
        c.expect(paths >= {"args.invoice_id", "args.amount", "args.currency", "args.note"},
                 f"the run form has fields for {sorted(paths)}, not invoice_id, amount, currency, note")
        currency = self.find('#args-fields [data-path="args.currency"]')
        c.expect(Select(currency).first_selected_option.text == "EUR", "the currency field does not start at its default EUR")
        c.expect("The invoice to pay" in (self.text("#args-fields") or ""), "the invoice_id field lacks its description")

        self.fill_invoice(12, -5)
        self.click("#run")
        errors = [e.text for e in self.finds(".field-error-message")]
        c.expect(any("must be >= 0" in e for e in errors),
                 f"amount -5 shows the field errors {errors}, none saying 'must be >= 0' (page: {self.body_text()!r})")
        c.expect(self.present('#args-errors li[data-path="args.amount"]'),
                 f'no #args-errors li[data-path="args.amount"]; #args-errors shows {self.text("#args-errors")!r}')
        beside = self.driver.execute_script(
            "var f = document.querySelector('#args-fields [data-path=\"args.amount\"]');"
            "var n = f && f.nextElementSibling; return n && n.classList.contains('field-error-message') ? n.textContent : null;")
        c.expect(beside is not None and "must be >= 0" in beside, f"the error is not next to the amount field (next to it: {beside!r})")
        kept = self.find('#args-fields [data-path="args.invoice_id"]').get_attribute("value")
        c.expect(kept == "12", f"after the error the invoice_id field holds {kept!r}, not the 12 typed")
        self.shot("type-form")

        self.fill_invoice(12, "12.5")
        self.click("#run")
        found = re.fullmatch(r"/jobs/(\d+)", self.path())
        c.require(found is not None, f"amount 12.5 did not land on a job page: {self.driver.current_url} shows {self.body_text()!r}")
        self.ids["run"] = found.group(1)
        args_text = self.text("#job-args") or ""
        c.expect('"amount": 12.5' in args_text and '"invoice_id": 12' in args_text,
                 f"the new job's #job-args shows {args_text!r}, not amount 12.5 and invoice_id 12")

        self.open_page("/types/invoice.pay")
        self.fill_invoice(12, "12.5")
        Select(self.find("#when")).select_by_value("cron")
        self.fill("#run-form input[name=schedule_name]", "pay-nightly")
        self.fill("#run-form input[name=cron]", "0 4 * * *")
        self.fill("#run-form input[name=preset_name]", "twelve")
        self.click("#run")
        c.expect(self.path() == "/cron", f"running on a cron schedule landed on {self.driver.current_url}: {self.body_text()!r}")
        c.expect(self.present('tr[data-schedule="pay-nightly"]'), f"/cron does not show pay-nightly: {self.text('#schedules')!r}")

        self.open_page("/types/invoice.pay")
        presets = [a.text.strip() for a in self.finds("a.preset")]
        c.expect(presets == ["twelve"], f"the type page shows the presets {presets}, not the saved twelve")
        if presets:
            self.click("a.preset")
            self.wait_for('#args-fields [data-path="args.amount"]')
            amount = self.find('#args-fields [data-path="args.amount"]').get_attribute("value")
            c.expect(amount == "12.5", f"the preset twelve fills amount with {amount!r}, not 12.5")
            self.click("button.delete-preset", confirm=True)
            c.expect("is deleted" in (self.text("#notice") or "") and not self.finds("a.preset"),
                     f"deleting the preset twelve showed {self.text('#notice')!r}, presets {[a.text for a in self.finds('a.preset')]}")

        self.open_page("/types/report.build")
        c.expect(not self.present("#schema") and "any args are accepted" in (self.body_text(5000)),
                 f"report.build has no schema, yet its page shows {self.text('#schema')!r} instead of 'any args are accepted'")
        c.expect(self.find("#args-json").is_displayed(), "report.build has no schema, yet its page shows no args JSON box")

        self.open_page(f"/jobs/{self.ids['run']}")
        self.click("#run-again")
        c.expect(self.path() == "/types/invoice.pay" and self.query().get("job") == [self.ids["run"]],
                 f"Run again went to {self.driver.current_url}")
        self.wait_for('#args-fields [data-path="args.amount"]')
        try:
            prefilled = json.loads(self.find("#args-json").get_attribute("value"))
        except ValueError:
            prefilled = None
        fields = {p: self.find(f'#args-fields [data-path="args.{p}"]').get_attribute("value") for p in ("invoice_id", "amount")}
        c.expect(prefilled == {"invoice_id": 12, "amount": 12.5, "currency": "EUR"} or fields == {"invoice_id": "12", "amount": "12.5"},
                 f"Run again opened the form with {prefilled} / fields {fields}, not the job's args")

    def check_audit(self, c):
        self.open_page("/audit")
        self.expect_no_messages(c, "/audit")
        self.shot("audit")
        rows = self.rows("#audit tbody tr")
        c.require(rows and len(rows[0]) == 6, f"#audit has no entries: {self.text('#audit')!r}")
        actions = [row[2] for row in rows]
        for wanted in ("jobs.retry", "jobs.cancel", "jobs.bulk", "queues.pause", "queues.resume", "queues.configure",
                       "workers.quiet", "cron.trigger", "cron.pause", "cron.resume", "types.run"):
            c.expect(wanted in actions, f"#audit does not list {wanted}; it lists {sorted(set(actions))}")
        for row in rows:
            if row[2] not in ("sign_in", "sign_out"):
                c.expect(row[1] == ADMIN_NAME, f"#audit names {row[1]!r} as who for {row[2]}, not {ADMIN_NAME}")
        discard = [row for row in rows if row[2] == "jobs.bulk" and "Discard" in row[5]]
        c.expect(discard and "2 of 2" in discard[0][5], f"#audit has no Discard: 2 of 2 entry: {[r for r in rows if r[2] == 'jobs.bulk']}")
        failed = [row for row in rows if row[5].startswith("failed") and row[2] != "types.run"]
        c.expect(not failed, f"#audit shows failed actions: {failed}")
        c.expect(any(row[2] == "types.run" and row[5].startswith("failed") for row in rows),
                 "#audit does not record the run refused for amount -5")
        order = ["types.run", "cron.trigger", "workers.quiet", "queues.pause", "jobs.bulk", "jobs.cancel", "jobs.retry", "sign_in"]
        first = [actions.index(a) for a in order if a in actions]
        c.expect(first == sorted(first), f"#audit is not newest first: the actions come as {actions}")
        pager = [a.text for a in self.finds(".pager a")]
        c.expect(not pager or len(rows) >= 50, f"/audit with {len(rows)} entries (one page) shows the paging links {pager}")
        stamps = [row[0] for row in rows]
        c.expect(stamps == sorted(stamps, reverse=True), f"#audit times are not newest first: {stamps}")

    def check_operations(self, c):
        # The secured broker's worker was quieted by the workers check; an admin may reserve too.
        rpc = worker = self.admin_rpc()
        started = rpc.call("operations.start", {
            "name": "signup", "queue": "signup", "globals": {"user_id": 7},
            "branches": {"main": ["account.create", {"type": "card.charge", "max_attempts": 1}, "receipt.send"]}})
        self.ids["operation"] = op = started["id"]
        first = worker.call("reserve", {"queues": ["signup"], "wait_ms": 5000})["jobs"]
        c.require(first and first[0]["type"] == "account.create", f"the first step's job is {first}")
        worker.call("ack", {"id": first[0]["id"], "set": {"account_id": "acc_19"}})
        second = worker.call("reserve", {"queues": ["signup"], "wait_ms": 5000})["jobs"]
        c.require(second and second[0]["type"] == "card.charge", f"the second step's job is {second}")
        worker.call("nack", {"id": second[0]["id"], "error": {"message": "card declined", "kind": "CardError",
                                                              "backtrace": ["charge.rb:12", "worker.rb:3"]}})
        self.open_page('/operations?globals={"user_id":7}')
        self.expect_no_messages(c, "/operations")
        self.shot("operations")
        row = self.text(f'tr[data-operation="{op}"]') or ""
        c.expect("signup" in row and "failed" in row and "card declined" in row and "main[1]" in row,
                 f"the operations list's row for {op} shows {row!r}, not a failed signup at main[1] with its error")
        self.open_page('/operations?globals={"user_id":8}')
        c.expect(not self.present(f'tr[data-operation="{op}"]'), "a filter by another user_id still lists the operation")
        self.open_page("/operations?state=failed")
        self.click(f'tr[data-operation="{op}"] a[href="/operations/{op}"]')
        c.require(self.path() == f"/operations/{op}", f"the operation's link went to {self.driver.current_url}")
        c.expect((self.text("#operation-state") or "") == "failed", f"the operation page says {self.text('#operation-state')!r}")
        c.expect("card declined" in (self.text("#operation-error") or ""), f"the failure box says {self.text('#operation-error')!r}")
        c.expect('"account_id": "acc_19"' in (self.text("#operation-globals") or ""),
                 f"the globals shown are {self.text('#operation-globals')!r}, without what step 1 set")
        states = [(li.get_attribute("data-step"), li.get_attribute("data-state")) for li in self.finds("#steps li")]
        c.expect(states == [("account.create", "completed"), ("card.charge", "failed"), ("receipt.send", "unprocessed")],
                 f"the timeline shows {states}")
        step = self.text('#steps li[data-step="card.charge"]') or ""
        c.expect("CardError" in step and "charge.rb:12" in step, f"the failed step shows {step!r}, not its error and backtrace")
        self.shot("operation")
        self.click("#resume")
        self.expect_notice(c, "resumed from the step that did not complete", "Retry from the failed step")
        c.expect((self.text("#operation-state") or "") == "running", f"after the retry the page says {self.text('#operation-state')!r}")
        states = [li.get_attribute("data-state") for li in self.finds("#steps li")]
        c.expect(states == ["completed", "failed", "pending", "unprocessed"],
                 f"after the retry the timeline's states are {states}: step 1 must not run again, step 2 waits again")
        again = rpc.call("operations.get", {"id": op})
        c.expect([s["type"] for s in again["steps"] if s["state"] != "unprocessed"] == ["account.create", "card.charge", "card.charge"],
                 f"operations.get after the retry lists {again['steps']}")
        self.click("#cancel", confirm=True)
        self.expect_notice(c, "cancelled: 1 waiting step cancelled", "Cancel")
        c.expect((self.text("#operation-state") or "") == "cancelled", f"after Cancel the page says {self.text('#operation-state')!r}")
        self.open_page("/operations/999999")
        c.expect(self.present("#missing"), f"/operations/999999 shows {self.body_text()!r}")

    def check_events(self, c):
        rpc = self.admin_rpc()
        rpc.call("subscriptions.upsert", {"name": "receipts", "event": "order.*", "filter": {"paid": True},
                                          "target": {"type": "receipt.send", "queue": "receipts"}})
        rpc.call("subscriptions.upsert", {"name": "fulfilment", "event": "order.paid", "target": {
            "operation": {"name": "fulfil", "queue": "warehouse", "branches": {"main": ["pick.items", "ship"]}}}})
        published = rpc.call("events.publish", {"type": "order.paid", "payload": {"order_id": 42, "paid": True}, "key": "order-42"})
        self.ids["event"] = event = published["id"]
        c.require([t["subscription"] for t in published["triggered"]] == ["fulfilment", "receipts"],
                  f"the publish triggered {published['triggered']}")
        self.open_page("/events")
        self.expect_no_messages(c, "/events")
        row = self.text(f'tr[data-event="{event}"]') or ""
        c.expect("order.paid" in row and "receipts → job" in row and "fulfilment → operation" in row and "order_id" in row,
                 f"the events list's row for {event} shows {row!r}")
        receipts = self.text('tr[data-subscription="receipts"]') or ""
        c.expect("order.*" in receipts and "job receipt.send in receipts, args: the payload" in receipts,
                 f"the subscriptions table's receipts row shows {receipts!r}")
        fulfilment = self.text('tr[data-subscription="fulfilment"]') or ""
        c.expect("operation fulfil: pick.items › ship" in fulfilment, f"the subscriptions table's fulfilment row shows {fulfilment!r}")
        self.shot("events")
        self.click(f'tr[data-event="{event}"] a[href="/events/{event}"]')
        c.require(self.path() == f"/events/{event}", f"the event's link went to {self.driver.current_url}")
        c.expect('"order_id": 42' in (self.text("#event-payload") or ""), f"the event page's payload is {self.text('#event-payload')!r}")
        started = {row[0]: row[2] for row in self.rows("#triggered tbody tr")}
        c.expect(started == {"fulfilment": "running", "receipts": "available"}, f"the event page says it started {started}")
        self.click("#replay", confirm=True)
        self.expect_notice(c, f"Event {event} replayed as event", "Replay")
        c.expect(self.path() != f"/events/{event}" and self.path().startswith("/events/"),
                 f"after Replay the page is {self.driver.current_url}, not the new event's")
        c.expect(f"event {event}" in (self.text(".facts") or ""), f"the replay's page does not link the first event: {self.text('.facts')!r}")
        self.open_page("/events")
        self.click('tr[data-subscription="receipts"] button.pause')
        c.expect("paused" in (self.text('tr[data-subscription="receipts"]') or ""), "after Pause the subscription row is not paused")
        again = rpc.call("events.publish", {"type": "order.paid", "payload": {"order_id": 43, "paid": True}})
        c.expect([t["subscription"] for t in again["triggered"]] == ["fulfilment"], f"a paused subscription still started {again['triggered']}")
        self.open_page("/events")
        self.click('tr[data-subscription="receipts"] button.resume')
        c.expect("active" in (self.text('tr[data-subscription="receipts"]') or ""), "after Resume the subscription row is not active")

    def check_packages(self, c):
        rpc = worker = self.admin_rpc()
        rpc.call("packages.upsert", {
            "name": "nightly.report", "description": "The nightly sales report", "queue": "packaged",
            "steps": ["report.fetch", {"parallel": ["report.mail", "report.archive"]}], "config": {"region": "eu", "limit": 10},
            "triggers": {"cron": "0 3 * * *", "events": ["report.requested"]}})
        first = rpc.call("packages.run", {"name": "nightly.report"})
        step = worker.call("reserve", {"queues": ["packaged"], "wait_ms": 5000})["jobs"]
        c.require(step and step[0]["type"] == "report.fetch" and step[0].get("package", {}).get("config", {}).get("region") == "eu",
                  f"the first step's job is {step}")
        worker.call("ack", {"id": step[0]["id"], "result": {"rows": 1200}})
        self.open_page("/packages")
        self.expect_no_messages(c, "/packages")
        row = self.text('tr[data-package="nightly.report"]') or ""
        c.expect("report.fetch › (report.mail + report.archive)" in row and "cron 0 3 * * * (UTC)" in row
                 and "events report.requested" in row and "by hand" in row and "region" in row,
                 f"the packages list's row shows {row!r}")
        self.shot("packages")
        self.click('tr[data-package="nightly.report"] a[href="/packages/nightly.report"]')
        c.require(self.path() == "/packages/nightly.report", f"the package's link went to {self.driver.current_url}")
        c.expect('"region": "eu"' in (self.text("#package-config") or ""), f"the package page's config is {self.text('#package-config')!r}")
        states = [li.get_attribute("data-step-state") for li in self.finds(f'tr[data-execution="{first["id"]}"] ol.steps li')]
        c.expect(states == ["completed", "pending", "pending"], f"the first execution's steps show {states}")
        c.expect("1200" in (self.text(f'tr[data-execution="{first["id"]}"]') or ""), "the first step's result is not shown")
        # A typo in the overrides is refused with the form kept as typed.
        field = self.find("#run-config")
        field.clear()
        field.send_keys('{"regoin": "us"}')
        self.click("#run")
        c.expect("config.regoin is not a key" in (self.text("#run-problem") or ""), f"a typo'd override shows {self.text('#run-problem')!r}")
        c.expect("regoin" in (self.find("#run-config").get_attribute("value") or ""), "the form lost what was typed")
        field = self.find("#run-config")
        field.clear()
        field.send_keys('{"region": "us"}')
        self.click("#run")
        self.expect_notice(c, "Package nightly.report started: execution", "Run")
        executions = rpc.call("packages.executions", {"name": "nightly.report"})["executions"]
        c.expect(len(executions) == 2 and executions[0]["config"] == {"region": "us", "limit": 10} and executions[0]["trigger"] == "manual",
                 f"after Run the executions are {[(e['id'], e['config'], e['trigger']) for e in executions]}")
        self.open_page("/packages/nightly.report")
        save = self.find(f'tr[data-execution="{first["id"]}"] input[name=name]')
        save.send_keys("baseline")
        self.click(f'tr[data-execution="{first["id"]}"] button.save')
        self.expect_notice(c, f"Execution {first['id']} saved as baseline", "Save")
        c.expect("saved as baseline" in (self.text(f'tr[data-execution="{first["id"]}"]') or ""), "the saved execution is not marked")
        self.driver.execute_script("document.querySelector('#package-config').scrollIntoView()")
        self.shot("package")
        self.open_page("/packages")
        c.expect("baseline" in (self.text('tr[data-saved="baseline"]') or ""), "the saved execution is not under Saved executions")
        self.ids["package"] = "nightly.report"

    def check_viewer(self, c):
        self.driver.delete_all_cookies()
        self.sign_in(VIEWER)
        c.require(self.path() == "/", f"the viewer token did not land on the overview: {self.driver.current_url}: {self.body_text()!r}")
        c.expect(VIEWER_NAME in (self.text("#who") or ""), f"the header shows {self.text('#who')!r} for the viewer")
        pages = ["/", "/jobs", "/queues", "/workers", "/cron", "/types", "/types/invoice.pay", "/audit", f"/jobs/{self.ids['dead']}",
                 "/operations", "/events", "/packages"] + ([f"/packages/{self.ids['package']}"] if "package" in self.ids else []) \
            + ([f"/operations/{self.ids['operation']}"] if "operation" in self.ids else []) \
            + ([f"/events/{self.ids['event']}"] if "event" in self.ids else [])
        for page in pages:
            self.open_page(page)
            c.expect(self.path() == page.split("?")[0] and self.present("main h1"),
                     f"the viewer's {page} shows {self.driver.current_url}: {self.body_text()!r}")
            buttons = [b.text for b in self.finds("main form[method=post] button")]
            c.expect(not buttons, f"the viewer's {page} has the action buttons {buttons}")
        self.open_page(f"/jobs/{self.ids['dead']}")
        c.expect(not self.present("#retry") and not self.present("#cancel") and not self.present("#discard"),
                 "the viewer's job page has action buttons")
        c.expect(self.present("#args-hidden") and not self.present("#job-args"), "the viewer's job page shows the args")
        self.open_page("/jobs")
        c.expect(not self.present("input.select-job") and not self.present("#bulk-form button"), "the viewer's /jobs has bulk actions")
        c.expect("hidden" in (self.text(f"tr[data-job='{self.ids['mail7']}']") or ""), "the viewer's /jobs shows job args")
        self.open_page("/queues")
        c.expect(not self.present("button.pause") and not self.present("#limits-form"), "the viewer's /queues has Pause or limits")
        self.open_page("/types/invoice.pay")
        c.expect(not self.present("#run-form"), "the viewer's type page has the run form")
        self.open_page('/jobs?args={"user_id":7}')
        c.expect("needs a token that may see args" in (self.text("#problem") or "") and not self.job_ids_shown(),
                 f"a viewer searching by args saw {self.job_ids_shown()} and the problem {self.text('#problem')!r}")
        self.open_page("/audit")
        leaked = [row[4] for row in self.rows("#audit tbody tr") if "invoice_id" in row[4]]
        c.expect(not leaked, f"the viewer's /audit shows job args in its details column: {leaked[:2]}")
        cookie = self.session_cookie()
        c.require(cookie is not None, "no session cookie for the viewer")
        self.viewer_cookie = cookie["value"]
        csrf = self.find("form[action='/logout'] input[name=csrf]").get_attribute("value")
        status, _, body = http("POST", self.base + "/queues/billing/pause", {"csrf": csrf},
                               {"Cookie": f"gantry_session={cookie['value']}"})
        c.expect(status == 403, f"a viewer's POST /queues/billing/pause (with its CSRF token) got {status}: {body.strip()[:200]!r}, not 403")
        c.expect(self.queue_paused("billing") is False, "a viewer's POST paused billing")

    def check_csrf(self, c):
        c.require(self.admin_cookie, "no admin session cookie from check 1")
        cookie = {"Cookie": f"gantry_session={self.admin_cookie}"}
        status, _, body = http("POST", self.base + "/queues/billing/pause", {}, cookie)
        c.expect(status == 403, f"the admin's POST without a CSRF token got {status}: {body.strip()[:200]!r}, not 403")
        status, _, body = http("POST", self.base + "/queues/billing/pause", {"csrf": "0" * 64}, cookie)
        c.expect(status == 403, f"the admin's POST with a wrong CSRF token got {status}: {body.strip()[:200]!r}, not 403")
        c.expect(self.queue_paused("billing") is False, "a POST without a CSRF token paused billing")
        bearer = {"Authorization": f"Bearer {ADMIN}"}
        status, headers, body = http("POST", self.base + "/queues/billing/pause", {}, bearer)
        c.expect(status == 303, f"POST with Authorization: Bearer ADMIN got {status}: {body.strip()[:200]!r}, not 303")
        c.expect(self.queue_paused("billing") is True, "the bearer POST did not pause billing")
        status, _, _ = http("POST", self.base + "/queues/billing/resume", {}, bearer)
        c.expect(status == 303 and self.queue_paused("billing") is False, f"the bearer resume got {status}")
        status, _, body = http("GET", self.base + "/", None, {"Authorization": f"Bearer {WORKER}"})
        c.expect(status == 403, f"GET / with a worker token as Bearer got {status}: {body.strip()[:200]!r}, not 403")
        status, _, body = http("GET", self.base + "/", None, {"Authorization": "Bearer not-a-token-at-all-000"})
        c.expect(status == 401, f"GET / with an unknown Bearer token got {status}, not 401")

    def check_sign_out(self, c):
        self.open_page("/")
        self.click("form[action='/logout'] button")
        c.expect(self.path() == "/login", f"Sign out went to {self.driver.current_url}, not /login")
        self.open_page("/jobs")
        c.expect(self.path() == "/login", f"after signing out /jobs shows {self.driver.current_url}, not /login")
        c.expect(self.session_cookie() is None, f"the gantry_session cookie is still there after signing out: {self.session_cookie()}")
        if self.viewer_cookie:
            status, headers, _ = http("GET", self.base + "/jobs", None, {"Cookie": f"gantry_session={self.viewer_cookie}"})
            c.expect(status == 303 and headers.get("Location", "").startswith("/login"),
                     f"the signed-out session still opens /jobs (status {status}, Location {headers.get('Location')!r})")

    def check_open(self, c):
        self.driver.delete_all_cookies()
        rpc = self.open["rpc_admin"]
        rpc.call("enqueue", {"type": "open.job", "queue": "open-q", "args": {"n": 1}})
        self.open_page("/", self.open_base)
        c.expect(self.path() == "/" and self.present("#queues"), f"the open broker's / shows {self.driver.current_url}: {self.body_text()!r}")
        c.expect(self.present("#open-banner"), "the open broker's / shows no #open-banner")
        c.expect(not self.present("form[action='/logout']"), "the open broker shows a Sign out button")
        self.shot("open-overview")
        self.open_page("/queues", self.open_base)
        self.click("tr[data-queue=open-q] button.pause")
        c.expect(self.present("#notice"), f"Pause on the open broker showed no #notice: {self.body_text()!r}")
        c.expect("paused" in (self.text("tr[data-queue=open-q]") or ""), "the open-q row does not show paused")
        c.expect(self.queue_paused("open-q", rpc) is True, "queues.list on the open broker says open-q is not paused")
        status, _, _ = http("POST", self.open_base + "/queues/open-q/resume", {})
        c.expect(status == 403, f"a POST without the CSRF cookie and field on the open broker got {status}, not 403")
        # A page of another site whose name was rebound to 127.0.0.1 arrives with its own Host: refused.
        status, _, body = http("GET", self.open_base + "/jobs", headers={"Host": "rebound.example:7441"})
        c.expect(status == 403 and "only on this machine" in body,
                 f"the open broker answered a request for Host rebound.example with {status}: {body.strip()[:200]!r}")
        status, _, _ = http("GET", self.open_base + "/live", headers={"Host": "rebound.example:7441"})
        c.expect(status == 200, f"/live for another Host got {status}; probes must keep working")


def start_brokers(gantryd, directory):
    """Both brokers at once (each on its own PostgreSQL); {name: {process, rpc, http}}."""
    none = {"GANTRY_ADMIN_TOKEN": "", "GANTRY_VIEWER_TOKEN": "", "GANTRY_WORKER_TOKEN": "", "GANTRY_PRODUCER_TOKEN": ""}
    plans = {
        "secured": {**none, "GANTRY_ADMIN_TOKEN": ADMIN, "GANTRY_VIEWER_TOKEN": VIEWER, "GANTRY_WORKER_TOKEN": WORKER},
        "open": none,
    }
    brokers, problems = {}, []

    def one(name):
        try:
            process, rpc, http_address = with_broker.start(gantryd, directory / name, [], plans[name])
            brokers[name] = {"process": process, "rpc": rpc, "http": http_address}
        except SystemExit as error:
            problems.append(f"the {name} broker did not start: {error}")
        except Exception as error:  # noqa: BLE001
            problems.append(f"the {name} broker did not start: {error!r}")

    threads = [threading.Thread(target=one, args=(name,), daemon=True) for name in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)
    return brokers, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gantryd", default=os.environ.get("GANTRYD", str(ROOT / ".build" / "debug" / "gantryd")))
    parser.add_argument("--screenshots", help="folder for the PNGs (default: a new temporary folder)")
    options = parser.parse_args()
    if not os.access(options.gantryd, os.X_OK):
        sys.exit(f"dashboard_browser_test: no gantryd at {options.gantryd}; build it first (swift build) or pass --gantryd")
    shots = pathlib.Path(options.screenshots) if options.screenshots else pathlib.Path(tempfile.mkdtemp(prefix="gantry-dashboard-shots-"))
    shots.mkdir(parents=True, exist_ok=True)

    def overtime(*_):
        raise Overtime()

    def terminated(*_):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, overtime)
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(OVERALL)
    started = time.monotonic()
    directory = pathlib.Path(tempfile.mkdtemp(prefix="gantry-dashboard-"))
    os.chmod(directory, 0o755)
    brokers, connections, driver, test = {}, [], None, None
    fatal = None
    try:
        brokers, problems = start_brokers(options.gantryd, directory)
        if problems:
            raise RuntimeError("; ".join(problems))
        secured, open_broker = brokers["secured"], brokers["open"]
        print(f"dashboard_browser_test: secured broker at http://{secured['http']}, open broker at http://{open_broker['http']} "
              f"({time.monotonic() - started:.1f} s)", flush=True)
        secured["rpc_admin"] = Rpc(secured["rpc"], {"client": "dashboard-test", "protocol": 1, "token": ADMIN})
        connections.append(secured["rpc_admin"])
        secured["rpc_worker"] = Rpc(secured["rpc"], {
            "client": "dashboard-test-worker", "protocol": 1, "token": WORKER,
            "worker": {"id": "w-1", "queues": ["billing"], "concurrency": 2, "handlers": [{"type": "invoice.pay"}]}})
        connections.append(secured["rpc_worker"])
        open_broker["rpc_admin"] = Rpc(open_broker["rpc"])
        connections.append(open_broker["rpc_admin"])
        driver = browser()
        test = DashboardTest(driver, secured, open_broker, shots)
        test.set_up()
        checks = [
            ("sign-in", test.check_sign_in), ("overview", test.check_overview), ("jobs and filters", test.check_jobs),
            ("a dead job: retry, cancel", test.check_job), ("bulk actions", test.check_bulk), ("queues", test.check_queues),
            ("workers", test.check_workers), ("cron", test.check_cron), ("job types and the run form", test.check_types),
            ("audit", test.check_audit), ("operations", test.check_operations), ("events", test.check_events),
            ("packages", test.check_packages),
            ("a viewer", test.check_viewer), ("CSRF and bearer tokens", test.check_csrf),
            ("sign-out", test.check_sign_out), ("the open broker", test.check_open),
        ]
        for number, (title, function) in enumerate(checks, 1):
            test.run(number, title, function)
    except Overtime:
        fatal = f"the run took longer than {OVERALL} s and was stopped"
    except KeyboardInterrupt:
        fatal = "interrupted"
    except Exception as error:  # noqa: BLE001
        fatal = f"could not run the checks: {''.join(traceback.format_exception_only(type(error), error)).strip()}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for connection in connections:
            connection.close()
        if driver is not None:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001
                pass
        for broker in brokers.values():
            with_broker.stop(broker["process"])
        logs = {name: directory / name / "gantryd.log" for name in ("secured", "open")}
        failed = fatal is not None or test is None or any(check.problems for check in test.results)
        if failed:
            for name, log in logs.items():
                if not log.exists():
                    continue
                text = log.read_text(errors="replace")
                lines = [line for line in text.splitlines() if re.search(r" (warning|error|critical) ", line)]
                shown = "\n".join(lines[-15:]) if fatal is None else text[-2000:]
                if shown:
                    print(f"--- the {name} broker's log ({'warnings and errors' if fatal is None else 'last lines'}) ---\n{shown}",
                          file=sys.stderr)
        shutil.rmtree(directory, ignore_errors=True)

    results = test.results if test else []
    for check in results:
        for problem in check.problems:
            print(f"dashboard_browser_test: FAILED {check.name}: {problem}", file=sys.stderr)
    if fatal:
        print(f"dashboard_browser_test: {fatal}", file=sys.stderr)
    passed = sum(1 for check in results if not check.problems)
    print(f"dashboard_browser_test: {passed} of {len(results)} checks passed in {time.monotonic() - started:.0f} s; "
          f"screenshots in {shots}")
    sys.exit(1 if fatal or passed < len(results) or not results else 0)


if __name__ == "__main__":
    main()
