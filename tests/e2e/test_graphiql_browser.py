"""GraphiQL in a real browser (Debian's Chromium, driven by Playwright), with every
request off this server refused: the page must render and run a query offline."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, Server

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]
ARGS = CHROMIUM_ARGS


async def test_graphiql_renders_and_runs_a_query_offline(likeview_server: Server) -> None:
    from playwright.async_api import async_playwright

    ours = urlsplit(likeview_server.base_url).netloc
    elsewhere: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()

            async def only_ours(route, request) -> None:
                if urlsplit(request.url).netloc == ours or request.url.startswith("data:"):
                    await route.continue_()
                else:
                    elsewhere.append(request.url)
                    await route.abort()

            await page.route("**/*", only_ours)
            # GraphiQL reads its editor text from ?q= (a ?query= would run the query itself).
            await page.goto(likeview_server.base_url + "/graphql?q=%7B__typename%7D")
            await page.wait_for_selector(".graphiql-container", timeout=30_000)
            await page.click(".graphiql-execute-button")
            await page.wait_for_function(
                '() => document.body.innerText.includes(\'"__typename": "Query"\')',
                timeout=30_000,
            )
        finally:
            await browser.close()
    assert elsewhere == []
