"""The web chat page: contrast and labels from its files, then keyboard-only use in Chromium.

The browser tests drive Debian's Chromium through Playwright against a small
app that serves the page and fakes `/v1/models` and a streaming
`/v1/chat/completions`, so they depend on nothing but the page itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

try:  # the page's test server; the file checks below need none of it
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse
    from fastapi.staticfiles import StaticFiles
except ImportError:  # pragma: no cover - without the server extra
    FastAPI = None  # type: ignore[assignment,misc]

WEB_DIR = Path(__file__).resolve().parents[3] / "personae" / "integrations" / "companion" / "web"
CHROMIUM = Path("/usr/bin/chromium")
KEY = "pk-test-web-123"
CHUNKS = ["Hello", ", Ann", "! It is good", " to hear from you."]
REPLY = "".join(CHUNKS)


# -- colours: WCAG 2.1 contrast -------------------------------------------------


def luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def parse_colour(text: str) -> tuple[float, float, float]:
    text = text.strip()
    if text.startswith("#"):
        digits = text[1:]
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    match = re.match(r"rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)", text)
    assert match, f"not a colour: {text!r}"
    return (float(match[1]), float(match[2]), float(match[3]))


def css_variables() -> dict[str, str]:
    css = (WEB_DIR / "style.css").read_text(encoding="utf-8")
    root = re.search(r":root\s*{(.*?)}", css, re.S)
    assert root, "style.css has no :root block"
    return dict(re.findall(r"--([\w-]+):\s*([^;]+);", root[1]))


# (foreground, background, minimum): text needs 4.5:1, the focus ring 3:1 (WCAG 1.4.11).
PAIRS = [
    ("text", "background", 4.5), ("text", "panel", 4.5), ("muted", "panel", 4.5),
    ("muted", "background", 4.5), ("accent-text", "accent", 4.5),
    ("accent-text", "accent-hover", 4.5), ("accent", "panel", 4.5),
    ("text", "user-bubble", 4.5), ("text", "companion-bubble", 4.5),
    ("error", "error-background", 4.5), ("focus", "panel", 3.0), ("focus", "background", 3.0),
    ("border", "panel", 3.0),
]


def test_main_colours_meet_wcag_aa() -> None:
    colours = css_variables()
    for fg, bg, minimum in PAIRS:
        ratio = contrast(parse_colour(colours[fg]), parse_colour(colours[bg]))
        assert ratio >= minimum, f"--{fg} on --{bg}: {ratio:.2f}:1 < {minimum}:1"
    assert int(colours["base-size"].removesuffix("px")) >= 20


def test_contrast_formula_can_fail() -> None:
    assert contrast((119, 119, 119), (255, 255, 255)) < 4.5  # #777 on white: 4.48
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = dict(attrs)
        if tag in {"input", "select", "textarea"}:
            self.controls.append(data)
        if tag == "label" and data.get("for"):
            self.label_for.add(str(data["for"]))


def test_every_control_has_a_label_and_replies_have_a_live_region() -> None:
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    parser = _Controls()
    parser.feed(html)
    assert len(parser.controls) == 4
    for control in parser.controls:
        assert control.get("id") in parser.label_for, control
    assert re.search(r'id="log"[^>]*aria-live="polite"', html)
    assert '<html lang="en">' in html


# -- the page in Chromium ---------------------------------------------------------


@dataclass
class FakeService:
    """Serves the page, `/v1/models` and a streaming `/v1/chat/completions`."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def app(self) -> Any:
        app = FastAPI()

        def refused(request: Request) -> JSONResponse | None:
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return JSONResponse({"error": {"message": "invalid API key: check it",
                                               "type": "invalid_request_error",
                                               "param": None, "code": "invalid_api_key"}},
                                    status_code=401)
            return None

        @app.get("/v1/models")
        async def models(request: Request) -> Any:
            return refused(request) or {"object": "list", "data": [
                {"id": "mira", "object": "model", "owned_by": "personae"},
                {"id": "otto", "object": "model", "owned_by": "personae"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            if (error := refused(request)) is not None:
                return error
            body = await request.json()
            self.requests.append({"body": body, "auth": request.headers["authorization"]})

            async def events() -> AsyncIterator[str]:
                for i, piece in enumerate(CHUNKS):
                    if i == len(CHUNKS) - 1:
                        # Hold the last piece back until the test has seen the first ones.
                        await asyncio.wait_for(self.release.wait(), 30)
                    chunk = {"id": "c1", "object": "chat.completion.chunk",
                             "model": body["model"],
                             "choices": [{"index": 0, "delta": {"content": piece},
                                          "finish_reason": None}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
        return app


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    uvicorn = pytest.importorskip("uvicorn")
    if FastAPI is None:
        pytest.skip('needs the server extra: pip install "personae[server]"')
    fake = FakeService()
    server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the page's test server did not start"
    fake.port = server.servers[0].sockets[0].getsockname()[1]
    yield fake
    fake.release.set()
    server.should_exit = True
    await asyncio.wait_for(serving, 10)


@pytest.fixture
async def page(service: FakeService) -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="needs the playwright package: pip install playwright")
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip("needs Chromium at /usr/bin/chromium (Debian: apt-get install chromium)")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run"],
        )
        try:
            context = await browser.new_context()
            tab = await context.new_page()
            tab.set_default_timeout(15_000)
            await tab.goto(service.url)
            yield tab
        finally:
            await browser.close()


async def focused(page: Any) -> str:
    return str(await page.evaluate(
        "document.activeElement.id || document.activeElement.className"))


@pytest.mark.slow  # starts Chromium
async def test_keyboard_only_chat_streams_into_the_live_region(
        page: Any, service: FakeService) -> None:
    order = []
    for _ in range(3):
        await page.keyboard.press("Tab")
        order.append(await focused(page))
    assert order == ["skip-link", "api-key", "user-name"]
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.type(KEY)
    await page.keyboard.press("Tab")
    await page.keyboard.type("Ann")
    await page.keyboard.press("Enter")  # submits the connect form
    await page.wait_for_function("document.getElementById('persona').options.length === 2")
    assert "2 companions" in await page.text_content("#status")

    order = []
    for _ in range(6):
        await page.keyboard.press("Tab")
        order.append(await focused(page))
    assert order == ["connect", "forget-key", "persona", "log", "message", "send"]
    await page.keyboard.press("Shift+Tab")  # back to the message box
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")  # the persona picker
    assert await focused(page) == "persona"
    await page.keyboard.press("ArrowDown")
    chosen = await page.input_value("#persona")
    assert chosen == "otto"  # the arrow key moved the choice
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    assert await focused(page) == "message"
    await page.keyboard.type("Hello, it's me")
    await page.keyboard.press("Enter")

    # The first pieces show in the live region while the answer is still coming.
    await page.wait_for_function(
        "document.querySelector('#log .message.assistant .content').textContent"
        " === 'Hello, Ann! It is good'")
    assert await page.get_attribute("#log", "aria-busy") == "true"
    service.release.set()
    await page.wait_for_function(
        f"document.querySelector('#log .message.assistant .content').textContent === {REPLY!r}")
    await page.wait_for_function("document.getElementById('log').getAttribute('aria-busy')"
                                 " === 'false'")
    live = await page.query_selector("[aria-live] .message.assistant")
    assert live is not None and REPLY in (await live.text_content() or "")
    assert await focused(page) == "message"

    [request] = service.requests
    assert request["auth"] == f"Bearer {KEY}"
    assert request["body"]["stream"] is True and request["body"]["user"] == "Ann"
    assert request["body"]["model"] == chosen
    assert request["body"]["messages"] == [{"role": "user", "content": "Hello, it's me"}]
    stored = await page.evaluate("[sessionStorage.getItem('personae.apiKey'), localStorage.length]")
    assert stored == [KEY, 0]


@pytest.mark.slow  # starts Chromium
async def test_page_is_large_high_contrast_with_visible_focus(page: Any) -> None:
    styles = await page.evaluate("""() => {
        const get = (sel) => getComputedStyle(document.querySelector(sel));
        return {
          size: get('body').fontSize, text: get('body').color,
          background: get('body').backgroundColor, button: get('#connect').color,
          buttonBg: get('#connect').backgroundColor, help: get('.help').color,
          panel: get('.panel').backgroundColor,
          labelled: [...document.querySelectorAll('input, select, textarea')]
            .every((c) => c.labels.length > 0),
        };
    }""")
    assert float(styles["size"].removesuffix("px")) >= 20
    assert styles["labelled"]
    pairs = [("text", "background"), ("button", "buttonBg"), ("help", "panel")]
    for fg, bg in pairs:
        ratio = contrast(parse_colour(styles[fg]), parse_colour(styles[bg]))
        assert ratio >= 4.5, (fg, bg, ratio)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    ring = await page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return [document.activeElement.id, s.outlineStyle, s.outlineWidth, s.outlineColor];
    }""")
    assert ring[0] == "api-key" and ring[1] != "none"
    assert float(ring[2].removesuffix("px")) >= 2
    assert contrast(parse_colour(ring[3]), parse_colour(styles["panel"])) >= 3


@pytest.mark.slow  # starts Chromium
async def test_a_wrong_key_is_announced(page: Any) -> None:
    await page.focus("#api-key")
    await page.keyboard.type("pk-wrong")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#error:not([hidden])")
    assert await page.get_attribute("#error", "role") == "alert"
    assert "invalid API key" in (await page.text_content("#error") or "")
    assert await page.is_disabled("#persona")
