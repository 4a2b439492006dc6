"""The reference app (/app/) in a real browser: Debian's Chromium driven by Playwright,
against a server started without JWT_SECRET (so the app signs in with dev tokens).

The player's tests run the page under Playwright's clock control: the browser's clock
moves 30 s in a moment. The server checks watch time against its own wall clock, so this
server runs with a policy file whose only change is a larger clock_slack_ms (a browser
whose clock is faster than the server's is exactly what that check refuses). Screenshots
go to web/test-results/ (gitignored), kept as CI artifacts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from main import DEV_JWT_SECRET
from tests.e2e.conftest import serving
from tests.e2e.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    data_of,
    eventually,
    gql,
    token,
    uid,
    wait_drained,
)

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "web" / "test-results"
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]
ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
VIDEO_ID = "demo-clip"
# The page's clock also runs on by itself between the steps a test drives (a page clock
# that Playwright installed moves with real time unless paused): what a step may add.
SLOP_MS = 3_000
# Watch time is the media clock's advance, summed as floats and sent in whole ms: a
# playback of exactly 2 s may arrive as 1,999 ms.
ROUNDING_MS = 5
SESSION = """query S($id: ID!) { viewSession(sessionId: $id) {
  watchedMs positionMs events ended flags decision { counted rule reason } } }"""
RECORD = "mutation V($v: [ViewInput!]!) { recordViews(inputs: $v) { decision { counted } } }"
VIEWS = "query V($id: ID!) { engagementSummary(contentId: $id) { views likes } }"


@pytest.fixture(scope="module")
def app_server(redis_proc: Any, tmp_path_factory: Any) -> Iterator[Server]:
    policies = (REPO / "domain" / "view_policies.toml").read_text()
    assert "clock_slack_ms = 5_000" in policies
    path = tmp_path_factory.mktemp("policies") / "view_policies.toml"
    path.write_text(policies.replace("clock_slack_ms = 5_000", "clock_slack_ms = 3_600_000"))
    # JWT_SECRET empty is unset: the public dev secret signs, and /dev/token exists.
    with serving(
        redis_proc,
        tmp_path_factory,
        JWT_SECRET="",
        VIEW_POLICIES_PATH=str(path),
        INTEGRITY_SETTLE_S="0",
    ) as s:
        yield s


@pytest.fixture
async def api(app_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_server.base_url, timeout=15.0) as client:
        yield client


@pytest.fixture
async def settled(app_server: Server) -> AsyncIterator[None]:
    """Counts read before a test are final: earlier tests' events all applied."""
    client = aioredis.Redis.from_url(app_server.redis_url, decode_responses=True)
    try:
        await wait_drained(client, app_server)
    finally:
        await client.aclose()
    yield


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


def dev(sub: str, roles: list[str] | None = None) -> str:
    return token(sub, roles or [], secret=DEV_JWT_SECRET)


# Records (in sessionStorage, which outlives the page) each request made while the page
# goes away: whether by navigator.sendBeacon or by fetch(keepalive).
UNLOAD_SPY = """(() => {
  const note = (what) => sessionStorage.setItem('likeview.unload',
    (sessionStorage.getItem('likeview.unload') || '') + ' ' + what);
  const beacon = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => {
    const ok = beacon(url, data);
    note(ok ? 'beacon' : 'beacon-refused');
    return ok;
  };
  const f = window.fetch.bind(window);
  window.fetch = (input, init) => {
    if (init && init.keepalive) note('keepalive');
    return f(input, init);
  };
})()"""


async def open_page(
    browser: Any, url: str, *, clock: bool = False, spy_unload: bool = False
) -> Any:
    context = await browser.new_context(viewport={"width": 900, "height": 1400})
    page = await context.new_page()
    if spy_unload:
        await page.add_init_script(UNLOAD_SPY)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    if clock:
        await page.clock.install()
    await page.goto(url)
    await page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    return page


async def shot(page: Any, name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)


# --- dev tokens -------------------------------------------------------------------


async def test_dev_token_route_signs_with_the_dev_secret(api: httpx.AsyncClient) -> None:
    r = await api.post("/dev/token", json={"userId": "dev-alice", "roles": ["service"]})
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["userId"] == "dev-alice" and issued["roles"] == ["service"]
    # The token works as a service token: it may register contents.
    body = await gql(
        api,
        'mutation { registerContent(input: {contentId: "dev-tok-1", creatorId: "c", '
        "kind: POST}) { contentId } }",
        bearer=issued["token"],
    )
    assert data_of(body)["registerContent"]["contentId"] == "dev-tok-1"
    bad = await api.post("/dev/token", json={"userId": ""})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "BAD_USER_INPUT"
    assert (await api.post("/dev/token", content=b"not json")).status_code == 400


# --- feed: two users, live ------------------------------------------------------------


async def test_a_like_in_one_browser_shows_in_the_other_and_a_double_click_counts_once(
    app_server: Server, api: httpx.AsyncClient, browser: Any, settled: None
) -> None:
    alice, bob = uid("alice"), uid("bob")
    a = await open_page(browser, f"{app_server.base_url}/app/?user={alice}")
    b = await open_page(browser, f"{app_server.base_url}/app/?user={bob}")
    card = '[data-content-id="demo-post-1"]'
    before = int(await b.get_attribute(f"{card} .likes", "data-likes") or "0")

    # A like by alice reaches bob's page live (no reload), counted once.
    started = time.monotonic()
    await a.click(f'{card} button[data-reaction="LIKE"]')
    await b.wait_for_selector(f'{card} .likes[data-likes="{before + 1}"]', timeout=10_000)
    latency = time.monotonic() - started
    (RESULTS).mkdir(parents=True, exist_ok=True)
    (RESULTS / "live_like_latency.txt").write_text(f"{latency:.3f} s\n")
    assert await a.get_attribute(f'{card} button[data-reaction="LIKE"]', "aria-pressed") == "true"
    assert await b.get_attribute(f'{card} button[data-reaction="LIKE"]', "aria-pressed") == "false"

    # A double-click on another card's reaction: one reaction, not a like and an unlike.
    card2 = '[data-content-id="demo-post-2"]'
    before2 = data_of(await gql(api, VIEWS, {"id": "demo-post-2"}))["engagementSummary"]["likes"]
    await a.dblclick(f'{card2} button[data-reaction="LOVE"]')
    await b.wait_for_selector(f'{card2} .likes[data-likes="{before2 + 1}"]', timeout=10_000)
    await a.wait_for_selector(f"{card2}:not([aria-busy])", timeout=10_000)
    assert await a.get_attribute(f'{card2} button[data-reaction="LOVE"]', "aria-pressed") == "true"
    mine = data_of(
        await gql(
            api,
            "query Q($id: ID!) { engagementSummary(contentId: $id) { likes viewerReaction } }",
            {"id": "demo-post-2"},
            bearer=dev(alice),
        )
    )["engagementSummary"]
    assert mine == {"likes": before2 + 1, "viewerReaction": "LOVE"}
    await shot(a, "feed-alice")
    assert a.errors == [] and b.errors == []


async def test_reactions_work_from_the_keyboard_with_their_labels(
    app_server: Server, browser: Any
) -> None:
    page = await open_page(browser, f"{app_server.base_url}/app/?user={uid('keys')}")
    wow = page.get_by_role("group", name="React to A walk through the old town").get_by_role(
        "button", name="Wow, 0 reactions"
    )
    await wow.focus()
    await page.keyboard.press("Enter")
    await page.wait_for_selector(
        '[data-content-id="demo-post-3"] button[data-reaction="WOW"]'
        '[aria-pressed="true"][aria-label="Wow, 1 reaction"]',
        timeout=10_000,
    )
    # The count is announced from a live region.
    region = page.locator('[data-content-id="demo-post-3"] .counts')
    assert await region.get_attribute("aria-live") == "polite"
    assert (await region.text_content() or "").startswith("1 reaction · ")
    await page.keyboard.press("Space")  # again: takes it back
    await page.wait_for_selector(
        '[data-content-id="demo-post-3"] button[data-reaction="WOW"][aria-pressed="false"]',
        timeout=10_000,
    )
    assert page.errors == []


async def test_feed_cards_on_screen_count_a_view_and_those_below_do_not(
    app_server: Server, api: httpx.AsyncClient, browser: Any, settled: None
) -> None:
    """POST counts after 1 s at least half visible: the first card is on screen, the
    last one is below the fold (the viewport is 1400 px, a card about 420 px)."""
    first, last = "demo-post-1", "demo-post-6"
    before = {c: await views_of(api, c) for c in (first, last)}
    page = await open_page(browser, f"{app_server.base_url}/app/?user={uid('reader')}", clock=True)
    await page.clock.run_for(6_000)  # past one heartbeat (5 s)
    await eventually(
        lambda: views_of(api, first), lambda v: v == before[first] + 1, what="a counted view"
    )
    # The page shows it live, and the card below the fold has no view from this reader.
    card = f'[data-content-id="{first}"] .views[data-views="{before[first] + 1}"]'
    await page.wait_for_selector(card, timeout=10_000)
    assert await views_of(api, last) == before[last]
    assert page.errors == []


# --- player: the view tracker under clock control ---------------------------------------


async def play(page: Any) -> None:
    """Plays the clip with its media time following the page's clock.

    Chromium's media clock is not under Playwright's clock control, and the tracker
    credits the position played (never more than the page's clock passed). So, once
    the real clip plays, its currentTime is read from the controlled clock (stopping at
    the clip's end, as a real one does) and timeupdate fires on the controlled timers:
    what a playback looks like to the tracker, at any speed the test runs the clock.
    """
    await page.evaluate(
        """async () => {
          const video = document.getElementById('clip');
          await video.play();
          const start = video.currentTime, t0 = Date.now();
          Object.defineProperty(video, 'currentTime', { configurable: true,
            get: () => Math.min(video.duration, start + (Date.now() - t0) / 1000) });
          setInterval(() => video.dispatchEvent(new Event('timeupdate')), 250);
        }"""
    )


async def set_visibility(page: Any, hidden: bool) -> None:
    """What a background tab looks like to the page (Page Visibility), then the event."""
    await page.evaluate(
        """(hidden) => {
          Object.defineProperty(document, 'visibilityState', {
            configurable: true, get: () => hidden ? 'hidden' : 'visible' });
          Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
          document.dispatchEvent(new Event('visibilitychange'));
        }""",
        hidden,
    )


async def session_of(api: httpx.AsyncClient, session_id: str) -> dict[str, Any] | None:
    body = await gql(api, SESSION, {"id": session_id}, bearer=dev("admin", ["admin"]))
    return data_of(body)["viewSession"]


async def views_of(api: httpx.AsyncClient, content_id: str) -> int:
    return int(data_of(await gql(api, VIEWS, {"id": content_id}))["engagementSummary"]["views"])


async def open_player(browser: Any, server: Server, who: str, *, spy_unload: bool = False) -> Any:
    url = f"{server.base_url}/app/player.html?{who}"
    return await open_page(browser, url, clock=True, spy_unload=spy_unload)


async def test_a_playback_to_the_threshold_counts_exactly_one_view(
    app_server: Server, api: httpx.AsyncClient, browser: Any, settled: None
) -> None:
    page = await open_player(browser, app_server, f"user={uid('viewer')}")
    before = await views_of(api, VIDEO_ID)
    await play(page)
    await page.clock.run_for(31_000)
    await page.evaluate("() => window.player.tracker.flush()")
    await page.wait_for_selector("#decision[data-counted=true]", timeout=10_000)
    text = await page.text_content("#decision")
    assert text is not None and text.startswith("counted: watched "), text
    session_id = await page.evaluate("() => window.player.tracker.sessionId")
    seen = await session_of(api, session_id)
    assert seen is not None and seen["decision"]["counted"] and seen["flags"] == [], seen
    assert 30_000 <= seen["watchedMs"] <= 31_000 + SLOP_MS, seen
    # More playback in the same session never counts again.
    await page.clock.run_for(5_000)
    await page.evaluate("() => window.player.tracker.flush()")
    await eventually(
        lambda: session_of(api, session_id),
        lambda s: s is not None and s["watchedMs"] >= 35_000,
        what="the later events recorded",
    )
    await eventually(
        lambda: views_of(api, VIDEO_ID), lambda v: v >= before + 1, what="the view counted"
    )
    await page.wait_for_selector(f'#views[data-views="{before + 1}"]', timeout=10_000)
    assert await views_of(api, VIDEO_ID) == before + 1
    await shot(page, "player-counted")
    assert page.errors == []


async def test_a_background_tab_accrues_no_watch_time(
    app_server: Server, api: httpx.AsyncClient, browser: Any
) -> None:
    page = await open_player(browser, app_server, f"user={uid('viewer')}")
    await play(page)
    await page.clock.run_for(2_000)
    # 20 s in a background tab: the clip plays on (as a muted one does), unwatched.
    await set_visibility(page, True)
    await page.clock.run_for(20_000)
    await page.evaluate("() => window.player.tracker.flush()")
    session_id = await page.evaluate("() => window.player.tracker.sessionId")
    seen = await eventually(
        lambda: session_of(api, session_id), lambda s: s is not None, what="the session"
    )
    assert seen is not None and 2_000 - ROUNDING_MS <= seen["watchedMs"] <= 2_000 + SLOP_MS, seen
    # Back in the foreground it accrues again: 2 s + 15 s watched, not the 37 s played.
    await set_visibility(page, False)
    await page.clock.run_for(15_000)
    await page.evaluate("() => window.player.tracker.flush()")
    seen = await eventually(
        lambda: session_of(api, session_id),
        lambda s: s is not None and s["watchedMs"] >= 17_000 - ROUNDING_MS,
        what="the foreground time recorded",
    )
    assert seen is not None and seen["watchedMs"] <= 17_000 + SLOP_MS, seen
    assert seen["positionMs"] >= 36_000 and not seen["decision"]["counted"], seen
    assert page.errors == []


@pytest.mark.parametrize(
    ("who", "transport"),
    [("anonymous", "beacon"), ("user=beacon-viewer", "keepalive")],
    ids=["anonymous-sendBeacon", "signed-in-fetch-keepalive"],
)
async def test_the_pagehide_flush_reaches_the_server(
    app_server: Server, api: httpx.AsyncClient, browser: Any, who: str, transport: str
) -> None:
    """An anonymous viewer's last events go by navigator.sendBeacon; a signed-in one's
    by fetch(keepalive), since a beacon cannot carry the Authorization header."""
    page = await open_player(browser, app_server, who, spy_unload=True)
    await play(page)
    # Less than a heartbeat (5 s): nothing is sent before the page goes away.
    await page.clock.run_for(2_000)
    session_id = await page.evaluate("() => window.player.tracker.sessionId")
    assert await session_of(api, session_id) is None
    await page.goto(f"{app_server.base_url}/app/?{who}")
    seen = await eventually(
        lambda: session_of(api, session_id),
        lambda s: s is not None and s["ended"],
        what="the final event sent at pagehide",
    )
    assert seen is not None and 2_000 - ROUNDING_MS <= seen["watchedMs"] <= 2_000 + SLOP_MS, seen
    # What the player page used, as its spy wrote it down (sessionStorage outlives it).
    used = await page.evaluate("() => sessionStorage.getItem('likeview.unload') || ''")
    assert transport in used.split(), used


# --- dashboard: charts from real data -------------------------------------------------


async def test_the_dashboard_charts_real_data(
    app_server: Server, api: httpx.AsyncClient, browser: Any
) -> None:
    creator, content = uid("creator"), uid("clip")
    service = dev("svc", ["service"])
    body = await gql(
        api,
        "mutation R($in: RegisterContentInput!) { registerContent(input: $in) { contentId } }",
        {"in": {"contentId": content, "creatorId": creator, "kind": "VIDEO", "durationMs": 40_000}},
        bearer=service,
    )
    data_of(body)
    fans = [uid("fan") for _ in range(3)]
    for i, fan in enumerate(fans):
        data_of(
            await gql(
                api,
                "mutation L($in: LikeInput!) { like(input: $in) { changed } }",
                {"in": {"contentId": content, "reaction": ["LIKE", "LOVE", "WOW"][i]}},
                bearer=dev(fan),
            )
        )
        views = [
            {
                "contentId": content,
                "sessionId": uid("s"),
                "eventId": "e1",
                "watchedMs": 31_000 + i * 3_000,
                "positionMs": 31_000 + i * 3_000,
                "platform": ["WEB", "IOS", "WEB"][i],
                "source": "FEED",
                "final": True,
            }
        ]
        data_of(
            await gql(
                api,
                RECORD,
                {"v": views},
                bearer=dev(fan),
            )
        )
    analytics = """query A($id: ID!, $r: TimeRange!) { contentAnalytics(contentId: $id, range: $r,
      granularity: MINUTE) { totals { views likesAdded } byPlatform { key views }
      completion { histogram } } }"""
    now = time.time()
    rng = {
        "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600)),
        "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 120)),
    }
    expected = await eventually(
        lambda: gql(api, analytics, {"id": content, "r": rng}, bearer=dev(creator)),
        lambda b: (
            not b.get("errors")
            and b["data"]["contentAnalytics"]["totals"] == {"views": 3, "likesAdded": 3}
            and sum(b["data"]["contentAnalytics"]["completion"]["histogram"]) == 3
        ),
        within=30.0,
        what="the analytics rollups",
    )
    want = expected["data"]["contentAnalytics"]

    page = await open_page(
        browser, f"{app_server.base_url}/app/dashboard.html?user={creator}&content={content}"
    )
    charts = await page.evaluate("() => window.dashboard.charts")
    assert charts["chart-completion"]["series"]["sessions"] == want["completion"]["histogram"]
    platform = charts["chart-platform"]
    assert dict(zip(platform["labels"], platform["series"]["views"], strict=True)) == {
        b["key"]: b["views"] for b in want["byPlatform"]
    }
    assert sum(charts["chart-series"]["series"]["views"]) == 3
    assert sum(charts["chart-series"]["series"]["likesAdded"]) == 3
    assert await page.get_attribute("#chart-completion", "data-chart") is not None
    # The first like made a FIRST_LIKE notification for this creator.
    await page.wait_for_function(
        "() => window.dashboard.notifications.some(n => n.kind === 'FIRST_LIKE')",
        timeout=90_000,
    )
    await shot(page, "dashboard")
    assert page.errors == []


@pytest.mark.parametrize(
    ("kind", "duration_ms", "histogram"),
    [("VIDEO", 9_000, [0] * 10), ("POST", None, [])],  # no duration: completion is null
)
async def test_the_dashboard_of_a_content_without_engagement(
    app_server: Server,
    api: httpx.AsyncClient,
    browser: Any,
    kind: str,
    duration_ms: int | None,
    histogram: list[int],
) -> None:
    """What a fresh `make run` shows first: empty breakdowns say so (an empty chart once
    hung the page: uPlot had no range to tick)."""
    creator, content = uid("creator"), uid("quiet")
    body = await gql(
        api,
        "mutation R($in: RegisterContentInput!) { registerContent(input: $in) { contentId } }",
        {
            "in": {
                "contentId": content,
                "creatorId": creator,
                "kind": kind,
                "durationMs": duration_ms,
            }
        },
        bearer=dev("svc", ["service"]),
    )
    data_of(body)
    page = await open_page(
        browser, f"{app_server.base_url}/app/dashboard.html?user={creator}&content={content}"
    )
    charts = await page.evaluate("() => window.dashboard.charts")
    assert charts["chart-platform"] == {"labels": [], "series": {"views": [], "likesAdded": []}}
    assert charts["chart-completion"]["series"]["sessions"] == histogram
    assert await page.text_content("#chart-platform .plot") == "No data in this range yet."
    assert page.errors == []


async def test_the_dashboard_shows_a_notification_live(
    app_server: Server, api: httpx.AsyncClient, browser: Any
) -> None:
    """notificationReceived over the dashboard's WebSocket: a first like made after the
    page loaded shows without a reload."""
    creator, content = uid("creator"), uid("post")
    data_of(
        await gql(
            api,
            "mutation R($in: RegisterContentInput!) { registerContent(input: $in) { contentId } }",
            {"in": {"contentId": content, "creatorId": creator, "kind": "POST"}},
            bearer=dev("svc", ["service"]),
        )
    )
    page = await open_page(
        browser, f"{app_server.base_url}/app/dashboard.html?user={creator}&content={content}"
    )
    assert await page.evaluate("() => window.dashboard.notifications.length") == 0
    assert await page.text_content("#unread") == "0"
    await page.wait_for_selector("body[data-live=true]", timeout=10_000)
    data_of(
        await gql(
            api,
            "mutation L($in: LikeInput!) { like(input: $in) { changed } }",
            {"in": {"contentId": content}},
            bearer=dev(uid("fan")),
        )
    )
    await page.wait_for_function(
        "() => window.dashboard.notifications.some(n => n.kind === 'FIRST_LIKE')",
        timeout=90_000,
    )
    assert await page.text_content("#unread") != "0"
    assert "its first like" in (await page.text_content("#notifications") or "")
    assert page.errors == []
