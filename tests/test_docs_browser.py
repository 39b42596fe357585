"""The built site in a real browser: the diagram is drawn and the math typeset, with no network.

Headless Chromium opens pages served from 127.0.0.1 while every other host is
unresolvable, so Mermaid and KaTeX must come from the site itself. The
Mermaid diagram must have become an SVG (inside the closed shadow root where
Material puts it), and every math element must hold KaTeX output, with no
KaTeX error and no raw delimiters left. Screenshots are saved to
``artifacts/`` for a human to look at.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ is not an installed package

from tools.docs.browser import CHROMIUM, Chromium, walk  # noqa: E402
from tools.docs.paths import ROOT  # noqa: E402
from tools.docs.testing import built_site  # noqa: E402

ARTIFACTS = ROOT / "artifacts"
PAGES = {"overview": "", "attention": "components/attention/"}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed: apt-get install chromium")


@pytest.fixture(scope="module")
def server():
    build = built_site()
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.output[-8000:]}"
    handler = functools.partial(QuietHandler, directory=str(build.site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with Chromium(tmp_path_factory.mktemp("chromium-profile")) as chromium:
        yield chromium


MATH_DONE = (
    "document.querySelectorAll('.arithmatex').length > 0 && "
    "[...document.querySelectorAll('.arithmatex')].every(e => e.querySelector('.katex'))"
)


def mermaid_svgs(page) -> int:
    """How many <svg> elements lie inside shadow roots of div.mermaid elements."""
    count = 0
    for node, _ in walk(page.dom()):
        attributes = node.get("attributes", [])
        classes = dict(zip(attributes[::2], attributes[1::2])).get("class", "")
        if node.get("nodeName") == "DIV" and "mermaid" in classes.split():
            count += sum(1 for inner, in_shadow in walk(node) if in_shadow and inner.get("nodeName", "").lower() == "svg")
    return count


def assert_offline(page) -> None:
    hosts = {urlparse(url).hostname for url in page.requested_urls() if url.startswith("http")}
    assert hosts <= {"127.0.0.1"}, f"the page requested other hosts: {sorted(hosts - {'127.0.0.1'})}"
    assert not page.failed_requests(), f"requests failed: {page.failed_requests()}"


def test_overview_draws_the_pipeline_diagram_offline(server, browser):
    page = browser.open(server + PAGES["overview"])
    # Material swaps each <pre class="mermaid"> for a <div class="mermaid"> once the diagram is drawn
    assert page.wait_for("document.querySelector('div.mermaid') !== null && !document.querySelector('pre.mermaid')"), (
        "the Mermaid source was never replaced by a diagram"
    )
    assert mermaid_svgs(page) >= 1, "no <svg> was rendered for the Mermaid diagram"
    page.screenshot(ARTIFACTS / "docs-overview.png")
    assert_offline(page)


def test_component_page_typesets_its_math_offline(server, browser):
    page = browser.open(server + PAGES["attention"])
    assert page.wait_for(MATH_DONE), "some math elements were never typeset by KaTeX"
    assert page.evaluate("document.querySelectorAll('.katex-error').length") == 0, "KaTeX reported an error"
    assert page.evaluate("document.querySelectorAll('.arithmatex .katex').length") >= 3
    text = page.evaluate("document.querySelector('article').innerText")
    assert "$$" not in text and "\\(" not in text and "\\[" not in text, "raw math delimiters are left in the text"
    page.screenshot(ARTIFACTS / "docs-attention.png")
    assert_offline(page)
