"""The portal example (examples/portal_app): Flask test-client checks and a headless-Chromium run.

The browser test drives Debian's ``chromium`` through ``chromium-driver`` with
Selenium (the driver path is given explicitly, so Selenium Manager never
downloads anything).  Without Flask, Selenium, ``/usr/bin/chromium`` or
``/usr/bin/chromedriver`` the tests skip with the reason, except in CI
(``CI=true``), where a missing piece is a failure.

Set ``PORTAL_SCREENSHOT=/path/shot.png`` to keep the final screenshot.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.services.runtime import FixedClock

ROOT = Path(__file__).resolve().parents[2]
APP_FILE = ROOT / "examples" / "portal_app" / "app.py"
IN_CI = os.environ.get("CI") == "true"
CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PORTAL_CHROMEDRIVER", "/usr/bin/chromedriver")

# The walk-through runs on the real date (any day): the app computes its child from today —
# a 中班 (MIDDLE) child of the current school year with a valid resident ID.
TODAY = datetime.now(UTC).date()
KG, COUNTY = "kindergarten:1111000001", "county:110105"


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the portal example's tests)")
    pytest.skip(reason)


def _load_portal() -> ModuleType:
    if importlib.util.find_spec("flask") is None:
        _missing("flask is not installed: pip install --group examples")
    if "portal_app" in sys.modules:
        return sys.modules["portal_app"]
    spec = importlib.util.spec_from_file_location("portal_app", APP_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_app"] = module
    spec.loader.exec_module(module)
    return module


def _clock(day: date = TODAY) -> FixedClock:
    return FixedClock(datetime.combine(day, time(9), tzinfo=UTC))


def _child(day: date = TODAY) -> dict[str, str]:
    """The README's walk-through child for ``day`` (the app's own helper)."""
    child: dict[str, str] = _load_portal().walkthrough_child(day)
    return child


# Today, and days where a fixed date would break: the school year's last and first days, a leap
# day, and years ahead (the seeded licence and the child follow the clock).
DAYS = [TODAY, date(2027, 8, 31), date(2027, 9, 1), date(2028, 2, 29), date(2041, 1, 2)]


@pytest.fixture(params=[TODAY], ids=["today"])
def portal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A portal app on a fresh SQLite file, seeded, its clock on ``request.param`` (today)."""
    module = _load_portal()
    app = module.create_app(tmp_path / "portal.db", clock=_clock(request.param), seed=7)
    yield app
    app.extensions["studentstatus"].store.close()


def _codes(html: str) -> list[str]:
    return re.findall(r'<code class="code">([\w.]+)</code>', html)


def _as(client: Any, operator: str) -> None:
    client.post("/operator", data={"operator": operator})


# --------------------------------------------------------------------------- test client


def test_doctests_of_the_app_module() -> None:
    """The examples in app.py's docstrings run (the app is not under src/, so not collected)."""
    module = _load_portal()
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5
    assert result.failed == 0


@pytest.mark.parametrize("portal", DAYS, indirect=True, ids=str)
def test_whole_flow_through_the_test_client(portal: Any) -> None:
    """Register → approve → duplicate → delete → allowed changes → dry-run refusal, on any day."""
    child = _child(portal.extensions["studentstatus"].clock.today())
    CHILD, CHILD_ID = child, child["id_number"]  # noqa: N806 - the walk-through's child
    client = portal.test_client()
    home = client.get("/").get_data(as_text=True)
    assert f'<span data-field="birth_date">{child["birth_date"]}</span>' in home  # the hint
    assert CHILD_ID not in home
    first = client.post("/register", data=CHILD)
    assert first.status_code == 302, first.get_data(as_text=True)
    assert first.status_code == 302
    rid = first.headers["Location"].rsplit("/", 1)[1]
    page = client.get(f"/records/{rid}").get_data(as_text=True)
    assert 'data-state="PENDING"' in page
    assert "11****************" in page
    assert CHILD_ID not in page

    _as(client, COUNTY)
    assert client.post(f"/records/{rid}/approve").status_code == 302
    assert 'data-state="ACTIVE"' in client.get(f"/records/{rid}").get_data(as_text=True)

    _as(client, KG)
    dup = client.post("/register", data=CHILD)
    dup_id = dup.headers["Location"].rsplit("/", 1)[1]
    assert "DUPLICATE_ID" in client.get(f"/records/{dup_id}").get_data(as_text=True)

    _as(client, COUNTY)
    home = client.get("/").get_data(as_text=True)
    problems = re.findall(r'data-problem="(\w+)" data-kind="(\w+)"\s+data-record="(\w+)"', home)
    assert sorted((k, r) for _, k, r in problems) == sorted(
        [("DUPLICATE_ID", rid), ("DUPLICATE_ID", dup_id)]
    )
    pid = next(p for p, _, r in problems if r == dup_id)
    missing_reason = client.post(f"/problems/{pid}/resolve", data={"action": "delete"})
    assert missing_reason.status_code == 422
    assert "reason_required" in _codes(missing_reason.get_data(as_text=True))
    done = client.post(f"/problems/{pid}/resolve", data={"action": "delete", "reason": "重复登记"})
    assert done.status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert "data-problem=" not in home
    assert f'data-record="{dup_id}" data-state="CANCELLED"' in home

    _as(client, KG)
    page = client.get(f"/records/{rid}").get_data(as_text=True)
    buttons = re.findall(r'value="(\w+)" class="allowed-change"', page)
    assert {"PROMOTE", "SUSPEND", "TRANSFER", "WITHDRAW"} <= set(buttons)
    assert "GRADUATE" not in buttons
    dry = client.get(f"/records/{rid}/dry-run?kind=GRADUATE").get_data(as_text=True)
    assert 'data-allowed="no"' in dry
    assert "not_senior" in _codes(dry)
    for html in (home, page, dry):
        assert CHILD_ID not in html


def test_registration_errors_are_all_reported_and_escaped(portal: Any) -> None:
    """Every violation of a bad form comes back at once; the form echo is HTML-escaped."""
    CHILD = _child()  # noqa: N806
    CHILD_ID = CHILD["id_number"]  # noqa: N806
    client = portal.test_client()
    bad = dict(CHILD, name="<script>alert(1)</script>", sex="X", grade="博士班")
    response = client.post("/register", data=bad)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert {"grade_invalid", "sex_invalid"} <= set(_codes(html))
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert CHILD_ID not in html


def test_refusals_are_pages_with_code_and_both_messages(portal: Any) -> None:
    """Role refusal (county dry-run) → 403; unknown record → 404; each with its code."""
    CHILD = _child()  # noqa: N806
    client = portal.test_client()
    rid = client.post("/register", data=CHILD).headers["Location"].rsplit("/", 1)[1]
    _as(client, COUNTY)
    refused = client.get(f"/records/{rid}/dry-run?kind=SUSPEND")
    assert refused.status_code == 403
    html = refused.get_data(as_text=True)
    assert _codes(html) == ["role_not_allowed"]
    assert "无权" in html
    assert "may not" in html
    missing = client.get("/records/r-does-not-exist")
    assert missing.status_code == 404
    assert _codes(missing.get_data(as_text=True)) == ["not_found"]
    kg_only = client.post("/operator", data={"operator": "ministry"})
    assert kg_only.status_code == 302
    assert "county:110105" in client.get("/").get_data(as_text=True)


def test_form_echo_is_escaped_for_any_text(portal: Any) -> None:
    """Property: whatever a user types as a name, the page shows it escaped, never raw."""
    from markupsafe import escape

    CHILD = _child()  # noqa: N806
    client = portal.test_client()

    @settings(max_examples=25, deadline=None)
    @given(st.text(alphabet="<>&\"'ab王 /", min_size=1, max_size=20))
    def check(name: str) -> None:
        html = client.post("/register", data=dict(CHILD, name=name, grade="博士班")).get_data(
            as_text=True
        )
        echoed = re.search(r'<input name="name" id="name" value="([^"]*)">', html)
        assert echoed is not None
        assert echoed.group(1) == str(escape(name.strip()))

    check()


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
def test_the_walkthrough_child_fits_on_any_day(day: date) -> None:
    """Whatever the day: a valid resident ID for the birth date, 中班 fits, entry not ahead."""
    from studentstatus.domain.age import grade_violations, school_year_of
    from studentstatus.domain.enums import Grade
    from studentstatus.domain.policy import Policy
    from studentstatus.ids import resident

    child = _child(day)
    birth = date.fromisoformat(child["birth_date"])
    assert resident.is_valid(child["id_number"], today=day)
    assert resident.get_birth_date(child["id_number"]) == birth
    assert grade_violations(birth, Grade.MIDDLE, school_year_of(day, Policy()), Policy()) == []
    assert date.fromisoformat(child["entry_date"]) <= day


# --------------------------------------------------------------------------- browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium via Debian's chromedriver (skip, or fail in CI, when missing)."""
    if importlib.util.find_spec("selenium") is None:
        _missing("selenium is not installed: pip install --group examples")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            _missing(f"{path} not found: apt-get install {package}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1400",
        "--lang=zh-CN",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(portal: Any) -> Iterator[str]:
    """The portal served by werkzeug on 127.0.0.1 and a free port, in a thread."""
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, portal, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        thread.join(timeout=10)
        srv.server_close()


def test_portal_in_headless_chromium(server: str, browser: Any, tmp_path: Path) -> None:
    """A kindergarten and its county walk through the portal in a real browser."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    CHILD = _child()  # noqa: N806 - today's walk-through child
    CHILD_ID = CHILD["id_number"]  # noqa: N806
    pages: list[str] = []

    def submit(button: Any) -> None:
        """Click a submit button and wait until the next page has replaced this one."""
        old = browser.find_element(By.TAG_NAME, "html")
        button.click()
        # While the page is being replaced Chromium may answer "node does not belong to the
        # document" instead of "stale": keep polling until the old page is really gone.
        WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(
            expected_conditions.staleness_of(old)
        )
        WebDriverWait(browser, 20).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def go(path: str) -> None:
        browser.get(server + path)
        pages.append(browser.page_source)

    def switch(operator: str) -> None:
        Select(browser.find_element(By.ID, "operator")).select_by_value(operator)
        submit(browser.find_element(By.ID, "switch"))
        pages.append(browser.page_source)

    def record_state() -> str:
        return str(browser.find_element(By.ID, "record").get_attribute("data-state"))

    def register() -> str:
        go("/")
        for field in ("name", "birth_date", "id_number", "guardian_name", "guardian_phone"):
            box = browser.find_element(By.ID, field)
            box.clear()
            box.send_keys(CHILD[field])
        Select(browser.find_element(By.ID, "grade")).select_by_value(CHILD["grade"])
        submit(browser.find_element(By.ID, "register-submit"))
        pages.append(browser.page_source)
        return str(browser.find_element(By.ID, "record").get_attribute("data-record"))

    # 1. The kindergarten registers a child through the form: PENDING, ID masked.
    go("/")
    assert "朝阳区阳光幼儿园" in browser.title + browser.page_source
    first = register()
    assert record_state() == "PENDING"
    assert "11****************" in browser.find_element(By.ID, "record").text

    # 2. The county approves it.
    switch(COUNTY)
    row = browser.find_element(By.CSS_SELECTOR, f'tr.record[data-record="{first}"]')
    submit(row.find_element(By.CSS_SELECTOR, "button.approve"))
    pages.append(browser.page_source)
    assert record_state() == "ACTIVE"

    # 3. The kindergarten registers the same child again: a DUPLICATE_ID problem.
    switch(KG)
    second = register()
    assert record_state() == "PENDING"
    assert "DUPLICATE_ID" in browser.find_element(By.ID, "record-problems").text

    # 4. The county sees both problems and deletes the duplicate record.
    switch(COUNTY)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.problem-row")
    assert sorted(str(r.get_attribute("data-record")) for r in rows) == sorted([first, second])
    assert {r.get_attribute("data-kind") for r in rows} == {"DUPLICATE_ID"}
    dup = next(r for r in rows if r.get_attribute("data-record") == second)
    dup.find_element(By.NAME, "reason").send_keys("重复登记，保留已核准学籍")
    submit(dup.find_element(By.CSS_SELECTOR, "button.delete"))
    pages.append(browser.page_source)
    assert browser.find_elements(By.CSS_SELECTOR, "tr.problem-row") == []
    cancelled = browser.find_element(By.CSS_SELECTOR, f'tr.record[data-record="{second}"]')
    assert cancelled.get_attribute("data-state") == "CANCELLED"

    # 5. The ACTIVE record shows its allowed changes as buttons (the county's are disabled:
    #    kindergartens request changes, counties approve them).
    go(f"/records/{first}")
    buttons = browser.find_elements(By.CSS_SELECTOR, "button.allowed-change")
    kinds = {b.get_attribute("value") for b in buttons}
    assert {"PROMOTE", "SUSPEND", "TRANSFER", "GO_ABROAD", "WITHDRAW"} <= kinds
    assert not any(b.is_enabled() for b in buttons)

    # 6. The kindergarten clicks a change that is not allowed: the dry run's refusal codes.
    switch(KG)
    go(f"/records/{first}")
    assert all(
        b.is_enabled() for b in browser.find_elements(By.CSS_SELECTOR, "button.allowed-change")
    )
    submit(browser.find_element(By.CSS_SELECTOR, 'button.dry-run[value="GRADUATE"]'))
    pages.append(browser.page_source)
    result = browser.find_element(By.ID, "dry-run-result")
    assert result.get_attribute("data-allowed") == "no"
    codes = [c.text for c in result.find_elements(By.CSS_SELECTOR, "code.code")]
    assert "not_senior" in codes
    for row in result.find_elements(By.CSS_SELECTOR, "tr.violation"):
        assert row.find_element(By.CSS_SELECTOR, ".zh").text.strip()
        assert row.find_element(By.CSS_SELECTOR, ".en").text.strip()

    # 7. Requesting an allowed change without its reason is refused with the code …
    submit(browser.find_element(By.CSS_SELECTOR, 'button.allowed-change[value="WITHDRAW"]'))
    pages.append(browser.page_source)
    refused = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#refused code.code")]
    assert "reason_required" in refused
    # … and a change that needs the county waits for it; it approves: the child is ABROAD.
    go(f"/records/{first}")
    browser.find_element(By.ID, "reason").send_keys("随父母出国")
    submit(browser.find_element(By.CSS_SELECTOR, 'button.allowed-change[value="GO_ABROAD"]'))
    pages.append(browser.page_source)
    assert "county:110105" in browser.find_element(By.CLASS_NAME, "flash").text
    switch(COUNTY)
    submit(browser.find_element(By.CSS_SELECTOR, "tr.request button.approve-request"))
    pages.append(browser.page_source)
    go(f"/records/{first}")
    assert record_state() == "ABROAD"

    # 8. Abroad, PROMOTE is no longer offered; its dry run says why.
    switch(KG)
    go(f"/records/{first}")
    offered = {
        b.get_attribute("value")
        for b in browser.find_elements(By.CSS_SELECTOR, "button.allowed-change")
    }
    assert "PROMOTE" not in offered
    assert "RETURN" in offered
    submit(browser.find_element(By.CSS_SELECTOR, 'button.dry-run[value="PROMOTE"]'))
    pages.append(browser.page_source)
    codes = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#dry-run-result code.code")]
    assert "transition_not_allowed" in codes

    # No page ever showed the full identity number.
    assert all(CHILD_ID not in html for html in pages)

    shot = tmp_path / "portal.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("PORTAL_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
