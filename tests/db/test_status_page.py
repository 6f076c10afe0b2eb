"""The read-only live status page (``/`` of flagctl serve) in a real headless Chromium,
driven by Playwright: it follows a kill and its release through the push stream without
reloading, only ever reads, shows a bad token the login form, shows HTML in a reason as
text, and says when what it shows may be out of date (relay not ready, its view of the
database stale, the stream gone).

Chromium is Debian's package (``make chromium``): without it these tests are skipped, and
fail under CI. Every wait is Playwright's (a condition on the page, bounded by ``WAIT``),
never a fixed time."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import Cli
from tests.serving import Serving, serving
from tests.tools import missing

CHROMIUM = os.environ.get("FLAGCTL_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server",  # loopback only: a machine's proxy is for the world
]  # fmt: skip
WAIT = 15_000  # milliseconds: the longest any condition on the page is waited for
GO = ("-y",)
READS = {"/", "/flagctl/v1/status", "/flagctl/v1/events"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"no Chromium at {CHROMIUM}: run `make chromium` (apt-get install -y chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed: pip install -e '.[dev]'")
    expect.set_options(timeout=WAIT)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def opened(browser: Any, *, bypass_csp: bool = False) -> Iterator[Any]:
    context = browser.new_context(bypass_csp=bypass_csp)  # its own session storage
    page = context.new_page()
    page.set_default_timeout(WAIT)
    yield page
    context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from opened(browser)


@pytest.fixture
def page_without_csp(browser: Any) -> Iterator[Any]:
    """A page that ignores its Content-Security-Policy: what keeps HTML in the data from
    running is then the rendering itself (textContent), not the policy."""
    yield from opened(browser, bypass_csp=True)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def requests(page: Any) -> list[tuple[str, str, str]]:
    """Every request the page makes from now on: (method, path, resource type)."""
    made: list[tuple[str, str, str]] = []
    page.on("request", lambda r: made.append((r.method, urlsplit(r.url).path, r.resource_type)))
    return made


def open_page(page: Any, served: Serving, token: str | None = None) -> Any:
    return page.goto(f"{served.url}/#token={token or served.token}")


def cells(row: Any) -> list[str]:
    texts: list[str] = row.locator("th, td").all_inner_texts()
    return texts


def flag_row(page: Any, name: str) -> Any:
    return page.get_by_role("table", name="Flags").locator(f'tr[data-flag="{name}"]')


def test_the_page_follows_a_kill_and_its_release_through_the_push_stream(ws8: Cli, page: Any) -> None:
    done = ws8("stage", "set", "p3", "full", "--force", "-r", "INC-1: rollout", *GO)
    assert done.exit_code == 0, done.stderr
    with serving(ws8) as served:
        made = requests(page)
        response = open_page(page, served)
        assert "script-src 'sha256-" in response.headers["content-security-policy"]
        flag = flag_row(page, "p3_advisory")
        expect(flag.locator("td").nth(1)).to_have_text("100%")  # flag, type, effective
        assert cells(flag)[:5] == ["p3_advisory", "rollout", "100%", "stage", "p3/full"]
        expect(page.locator("body")).to_have_attribute("data-state", "live")
        expect(page.locator("#kill-banner")).to_be_hidden()
        assert page.evaluate("location.hash") == ""  # the token left the address bar at once
        page.evaluate("window.loadedOnce = 'still the same page'")
        with served.http() as http:  # a service behind the relay (its fetch registers it)
            evaluate = "/ofrep/v1/evaluate/flags"
            http.post(evaluate, json={"context": {"targetingKey": "r"}}, headers=served.headers("pod-1"))

        ws8("kill", "p3-off", "-r", "INC-7: advisories time out", *GO)
        banner = page.get_by_role("alert")
        expect(banner).to_contain_text("Kill switch engaged: p3-off (global, level 5)")
        expect(banner).to_contain_text("INC-7: advisories time out")
        expect(flag).to_have_class("killed")
        assert cells(flag)[:5] == ["p3_advisory", "rollout", "0%", "killed", "p3-off"]
        (engaged,) = page.get_by_role("table", name="Kill switches engaged").locator("tbody tr").all()
        switch, scope, level, _, reason = cells(engaged)[:5]
        assert (switch, scope, level, reason) == ("p3-off", "global", "5", "INC-7: advisories time out")
        ladder = page.get_by_role("table", name="Ladders").locator('tr[data-ladder="p3"]')
        assert cells(ladder)[:5] == ["p3", "p3_advisory", "dark", "p3-off", "full"]
        assert page.locator('tr[data-ladder="p3"] [aria-current="step"]').inner_text() == "dark"
        changes = page.get_by_role("table", name="Last changes")
        expect(changes.locator("tbody tr").first).to_contain_text("INC-7: advisories time out")
        # the service, under the relay it reads through; not the page (it is no client)
        relay, behind = page.get_by_role("table", name="Clients").locator("tbody tr").all()[-2:]
        host, relay_id = cells(relay)[0], relay.get_attribute("data-client")
        assert cells(relay)[1:4] == ["flagctl serve", str(os.getpid()), "the database"]
        assert cells(behind)[:4] == ["└ pod-1", "checkout-web", "", f"relay {relay_id} ({host})"]
        assert behind.get_attribute("class") == "behind-relay"

        ws8("release", "p3-off", "-r", "INC-7: fixed", *GO)
        expect(flag).not_to_have_class("killed")
        expect(flag.locator("td").nth(1)).to_have_text("100%")
        expect(banner).to_be_hidden()
        expect(page.get_by_role("table", name="Kill switches engaged")).to_have_count(0)
        expect(page.locator("#kills")).to_have_text("none")

        assert page.evaluate("window.loadedOnce") == "still the same page"  # pushed, not reloaded
        documents = [r for r in made if r[2] == "document"]
        assert documents == [("GET", "/", "document")]
        assert {method for method, _, _ in made} == {"GET"}  # read-only: it never wrote anything
        assert {path for _, path, _ in made} <= READS
        status_reads = sum(1 for _, path, _ in made if path == "/flagctl/v1/status")
        assert 3 <= status_reads <= 5  # hello, kill, release (a change may reach it twice), no polling


def test_an_open_page_is_no_client_a_kill_waits_for(ws8: Cli, page: Any) -> None:
    """The page follows the stream without naming itself: a named reader that never
    fetches a flag would hold up ``kill --wait-ack`` and be named as stalled."""
    with serving(ws8) as served:
        open_page(page, served)
        expect(page.locator("body")).to_have_attribute("data-state", "live")
        killed = ws8("kill", "p3-off", "--wait-ack", "--timeout", "5s", "-r", "INC-8: page open", *GO)
        assert killed.exit_code == 0, killed.stderr
        expect(flag_row(page, "p3_advisory")).to_have_class("killed")


def test_the_markup_is_accessible(ws8: Cli, page: Any) -> None:
    with serving(ws8) as served:
        open_page(page, served)
        expect(page.locator("body")).to_have_attribute("data-state", "live")
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.get_by_role("heading", level=1).inner_text().startswith("flagctl status")
        sections = page.get_by_role("heading", level=2).all_inner_texts()
        assert sections == ["Kill switches engaged", "Flags", "Ladders", "Freezes", "Clients", "Last changes"]
        flags = page.get_by_role("table", name="Flags")
        headers = flags.get_by_role("columnheader").all_inner_texts()
        assert headers[:5] == ["flag", "type", "effective", "reason", "by"]
        assert flags.get_by_role("rowheader").all_inner_texts() == ["p3_advisory"]
        assert page.get_by_role("status").count() == 1  # the live/stale line is announced
        # nothing to act on: the one control is the (hidden) login form's
        assert page.get_by_role("button").count() == 0 and page.get_by_role("link").count() == 0
        assert page.get_by_role("button", include_hidden=True).all_inner_texts() == ["Show"]
        assert page.locator("form").count() == 1 and page.locator("form").is_hidden()


def test_a_bad_token_shows_the_login_form_and_a_good_one_the_status(ws8: Cli, page: Any) -> None:
    with serving(ws8) as served:
        open_page(page, served, token="fct_not-a-token")
        form = page.get_by_role("form", name="Show the status")
        expect(form).to_be_visible()
        expect(form).to_contain_text("That token is not accepted")
        expect(page.locator("main")).to_be_hidden()
        stored = "sessionStorage.getItem('flagctl-token')"
        assert page.evaluate(stored) is None  # a refused token is forgotten

        page.get_by_label("Read token").fill(served.token)
        form.get_by_role("button", name="Show").click()
        expect(flag_row(page, "p3_advisory")).to_be_visible()
        expect(form).to_be_hidden()
        assert page.evaluate(stored) == served.token


INJECTED = 'INC-9: <img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>'


def test_html_in_a_reason_is_shown_as_text_and_never_runs(ws8: Cli, page_without_csp: Any) -> None:
    page = page_without_csp
    with serving(ws8) as served:
        open_page(page, served)
        expect(page.locator("body")).to_have_attribute("data-state", "live")
        ws8("kill", "p3-off", "-r", INJECTED, *GO)
        banner = page.get_by_role("alert")
        expect(banner).to_contain_text(INJECTED)
        (engaged,) = page.get_by_role("table", name="Kill switches engaged").locator("tbody tr").all()
        assert cells(engaged)[4] == INJECTED
        latest = page.get_by_role("table", name="Last changes").locator("tbody tr").first
        expect(latest).to_contain_text(INJECTED)
        assert page.locator("body img, body b, body script").count() == 1  # the page's own script
        assert page.evaluate("window.pwned") is None


def test_the_page_says_when_what_it_shows_may_be_out_of_date(ws8: Cli, page: Any) -> None:
    cut = threading.Event()
    now = [1000.0]

    def connect(*args: Any, **kwargs: Any) -> Any:
        if cut.is_set():
            raise psycopg.OperationalError("the test cut the relay off its database")
        return psycopg.connect(*args, **kwargs)

    with serving(ws8, start=False, connect=connect, clock=lambda: now[0]) as served:
        try:
            state = page.locator("#state")
            body = page.locator("body")
            open_page(page, served)
            expect(body).to_have_attribute("data-state", "stale")
            expect(state).to_contain_text("the relay has not read its system yet")

            served.relay.start()
            expect(body).to_have_attribute("data-state", "live")
            page.evaluate("window.loadedOnce = 'still the same page'")

            cut.set()  # the relay loses its database, and time passes beyond its staleness bound
            ws8.sql(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE application_name = 'flagctl-gate' AND datname = current_database()"
            )
            now[0] += 3600
            expect(state).to_contain_text("older than its staleness bound")
            expect(body).to_have_attribute("data-state", "stale")
            expect(flag_row(page, "p3_advisory")).to_be_visible()  # what it last knew stays, dimmed

            cut.clear()  # the database is back: the relay reads again, the page is live again
            expect(body).to_have_attribute("data-state", "live")

            served.server.should_exit = True  # the relay goes away: the stream drops
            expect(state).to_contain_text("the push stream dropped")
            expect(body).to_have_attribute("data-state", "stale")
            assert page.evaluate("window.loadedOnce") == "still the same page"
        finally:
            served.relay.close()
