"""The built site in a real browser, as a reader sees it: every page, at 1280 px and at 390 px, with no network.

Headless Chromium opens every page of the site served from 127.0.0.1 while
every other host is unresolvable, so Mermaid and KaTeX must come from the
site itself. On each page, once its math is typeset and its diagrams drawn,
the test checks each class of defect a reader ran into:

* raw reStructuredText or Sphinx markup (``:mod:`x```, double backquotes) in
  the rendered text, or ``<word>`` swallowed as an unknown HTML element;
* a display equation wider than its container (at 390 px one may scroll in
  its own box, never widen the page);
* emoji outside code (a status must be text or inline SVG: emoji need an
  emoji font, and render as empty boxes without one);
* horizontal page overflow at 390 px;
* Mermaid labels that overlap each other;
* KaTeX errors and raw math delimiters.

It also opens the site from ``file://`` and follows a navigation link. Every
page is screenshotted at both widths into ``artifacts/docs-screens/`` (git
ignores ``artifacts/``), for a human to look at.
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

ARTIFACTS = ROOT / "artifacts" / "docs-screens"
WIDTHS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed: apt-get install chromium")


@pytest.fixture(scope="module")
def site() -> Path:
    build = built_site()
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.output[-8000:]}"
    return build.site


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(QuietHandler, directory=str(site))
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


def site_pages(site: Path) -> list[str]:
    """Every page of the site (relative URLs), the 404 page aside."""
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")


# Ready: the page has loaded, its math is typeset (katex-init.js marks the body when it has fitted the
# equations) and every Mermaid source has become a diagram.
READY = (
    "document.readyState === 'complete' && "
    "(document.querySelectorAll('.arithmatex').length === 0 || document.body.hasAttribute('data-math-fitted')) && "
    "!document.querySelector('pre.mermaid')"
)

# Every defect the page shows in the browser, as readable strings; [] when there is none.
DEFECTS = r"""
(() => {
  const problems = [];
  const article = document.querySelector('article') || document.body;
  // Text outside code: a <pre>/<code> may show markup on purpose (a docstring, a role in an example).
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  let prose = '';
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest('pre, code, .katex, script, style, .mermaid')) continue;
    prose += node.textContent + ' ';
  }
  const role = prose.match(/:(mod|func|class|meth|attr|data|obj|ref|doc|exc|py:\w+):`[^`]*`/);
  if (role) problems.push('raw Sphinx role in the text: ' + role[0]);
  const literal = prose.match(/``[^`]+``/);
  if (literal) problems.push('raw reST literal in the text: ' + literal[0]);
  const emptyLiteral = prose.match(/``/);
  if (!literal && emptyLiteral) problems.push('a literal pair of backquotes in the text (an empty code span?)');
  const emoji = prose.match(/\p{Extended_Pictographic}/u);
  if (emoji) problems.push('emoji in the text (renders as a box without an emoji font): ' + emoji[0]);
  // <unk> written in prose becomes an unknown element and disappears from the text.
  for (const element of article.querySelectorAll('*')) {
    if (element instanceof HTMLUnknownElement) problems.push('swallowed as HTML: <' + element.tagName.toLowerCase() + '>');
  }
  if (document.querySelector('.katex-error')) problems.push('KaTeX error: ' + document.querySelector('.katex-error').textContent.slice(0, 80));
  if (/\$\$|\\\(|\\\[/.test(prose)) problems.push('raw math delimiters in the text');
  // A display equation wider than its box: cut off, unless the box scrolls.
  for (const display of article.querySelectorAll('.katex-display')) {
    const formula = display.querySelector('.katex');
    const overflow = Math.max(formula.scrollWidth, formula.getBoundingClientRect().width) - display.clientWidth;
    if (overflow > 1) {
      const scrolls = ['auto', 'scroll'].includes(getComputedStyle(display).overflowX);
      problems.push((scrolls ? 'SCROLLS ' : 'CUT OFF ') + 'display equation ' + overflow + ' px wider than its box: ' +
                    formula.textContent.slice(0, 60));
    }
  }
  // The page itself must not scroll sideways.
  const pageOverflow = document.documentElement.scrollWidth - window.innerWidth;
  if (pageOverflow > 1) {
    let widest = '';
    for (const element of document.body.querySelectorAll('*')) {
      const r = element.getBoundingClientRect();
      if (r.right > window.innerWidth + 1 && !element.closest('.md-sidebar, .md-nav, .md-search, .md-header__inner .md-search')) {
        widest = element.tagName.toLowerCase() + '.' + element.className + ' ' + (element.textContent || '').slice(0, 40);
        break;
      }
    }
    problems.push('the page is ' + pageOverflow + ' px wider than the window (first culprit: ' + widest + ')');
  }
  return problems;
})()
"""


def mermaid_label_overlaps(page) -> list[str]:
    """Pairs of Mermaid labels (node boxes, subgraph titles, edge labels) whose boxes overlap, read in the closed shadow roots."""
    kinds = {"node": "node", "cluster-label": "subgraph title", "edgeLabel": "edge label"}
    boxes = []
    for node, in_shadow in walk(page.dom()):
        if not in_shadow:
            continue
        attributes = node.get("attributes", [])
        classes = dict(zip(attributes[::2], attributes[1::2])).get("class", "").split()
        kind = next((label for cls, label in kinds.items() if cls in classes), None)
        if kind is None:
            continue
        rect = page.rect(node["nodeId"])
        if rect and rect["width"] > 1 and rect["height"] > 1:
            boxes.append((kind, rect))
    overlaps = []
    for i, (kind_a, a) in enumerate(boxes):
        for kind_b, b in boxes[i + 1 :]:
            if a["text"] == b["text"]:  # one label's nested elements (a <g> and the <span> inside it)
                continue
            width = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
            height = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
            if width > 2 and height > 2:
                overlaps.append(f"{kind_a} {a['text']!r} overlaps {kind_b} {b['text']!r}")
    return overlaps


def assert_offline(page) -> None:
    hosts = {urlparse(url).hostname for url in page.requested_urls() if url.startswith("http")}
    assert hosts <= {"127.0.0.1"}, f"the page requested other hosts: {sorted(hosts - {'127.0.0.1'})}"
    assert not page.failed_requests(), f"requests failed: {page.failed_requests()}"


@pytest.mark.parametrize("device", list(WIDTHS))
def test_every_page_renders_without_defects(site, server, browser, device):
    width, height, mobile = WIDTHS[device]
    problems: dict[str, list[str]] = {}
    diagrams = 0
    for url in site_pages(site):
        page = browser.open(server + url, width=width, height=height, mobile=mobile)
        try:
            if not page.wait_for(READY, timeout=45):
                problems[url] = ["never became ready: math not typeset or a Mermaid diagram not drawn"]
                continue
            found = page.evaluate(DEFECTS)
            if device == "desktop":  # on a wide screen every equation must fit, not merely scroll
                found = [p.replace("SCROLLS ", "") for p in found]
            else:
                found = [p for p in found if not p.startswith("SCROLLS ")]
            if page.evaluate("document.querySelector('div.mermaid') !== null"):
                diagrams += 1
                found += mermaid_label_overlaps(page)
            if found:
                problems[url] = found
            page.screenshot(ARTIFACTS / device / (url.replace("/", "__").removesuffix(".html") + ".png"))
            assert_offline(page)
        finally:
            page.close()
    assert not problems, f"at {width} px:\n" + "\n".join(f"{url}: {p}" for url, found in problems.items() for p in found)
    assert diagrams >= 2, "the Mermaid diagrams (overview, one block) were not drawn"


def test_the_defect_checks_have_teeth(server, browser, tmp_path):
    """A page with one defect of each class: the checks must report every one of them."""
    bad = Path(built_site().site) / "__defects__.html"
    long_formula = "x_1 + " * 120 + "x_n"
    bad.write_text(
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        "<link rel=stylesheet href='assets/vendor/katex/dist/katex.min.css'></head><body><article>"
        '<p>see :mod:`transformer_spec.spec` and ``x``; the token ("<unk>"); passed ✅</p>'
        '<div class="arithmatex"><span class="katex-display" style="display: block; width: 300px">'
        f'<span class="katex" style="display: block; white-space: nowrap">{long_formula}</span></span></div>'
        "<div style='width: 900px'>too wide for a phone</div>"
        "</article></body></html>"
    )
    try:
        page = browser.open(server + "__defects__.html", width=390, height=844, mobile=True)
        assert page.wait_for("document.readyState === 'complete'")
        found = " | ".join(page.evaluate(DEFECTS))
        page.close()
    finally:
        bad.unlink()
    for expected in (
        "raw Sphinx role",
        "raw reST literal",
        "swallowed as HTML: <unk>",
        "emoji",
        "display equation",
        "wider than the window",
    ):
        assert expected in found, f"the check missed: {expected} (it found: {found})"


def test_mermaid_overlap_check_has_teeth(server, browser):
    """Two labels drawn on top of each other are reported (checked on the overview page's own diagram, moved)."""
    page = browser.open(server + "index.html")
    try:
        assert page.wait_for(READY, timeout=45)
        nodes = [
            n
            for n, shadow in walk(page.dom())
            if shadow
            and "node" in dict(zip(n.get("attributes", [])[::2], n.get("attributes", [])[1::2])).get("class", "").split()
        ]
        assert len(nodes) >= 2
        first = page.rect(nodes[0]["nodeId"])
        second = page.rect(nodes[1]["nodeId"])
        handle = page.browser.send("DOM.resolveNode", page.session, nodeId=nodes[1]["nodeId"])["object"]["objectId"]
        dx, dy = first["x"] - second["x"], first["y"] - second["y"]
        page.browser.send(
            "Runtime.callFunctionOn",
            page.session,
            objectId=handle,
            functionDeclaration=f"function () {{ this.setAttribute('transform', (this.getAttribute('transform') || '') + ' translate({dx},{dy})'); }}",
        )
        assert mermaid_label_overlaps(page), "two nodes drawn on top of each other were not reported"
    finally:
        page.close()


def test_overview_draws_the_pipeline_diagram_offline(server, browser):
    page = browser.open(server + "index.html")
    try:
        assert page.wait_for(READY, timeout=45), "the Mermaid source was never replaced by a diagram"
        svgs = sum(1 for n, shadow in walk(page.dom()) if shadow and n.get("nodeName", "").lower() == "svg")
        assert svgs >= 1, "no <svg> was rendered for the Mermaid diagram"
        assert_offline(page)
    finally:
        page.close()


def test_component_page_typesets_its_math_offline(server, browser):
    page = browser.open(server + "components/attention.html")
    try:
        assert page.wait_for(READY, timeout=45), "some math elements were never typeset by KaTeX"
        assert page.evaluate("[...document.querySelectorAll('.arithmatex')].every(e => e.querySelector('.katex'))")
        assert page.evaluate("document.querySelectorAll('.arithmatex .katex').length") >= 3
        assert_offline(page)
    finally:
        page.close()


def test_the_site_works_from_file_urls(site, browser):
    """Opened from disk (no server): links name .html files, not folders, and the math and diagrams still render."""
    page = browser.open((site / "index.html").as_uri())
    try:
        assert page.wait_for(READY, timeout=45), "the overview did not render from file://"
        href = page.evaluate("(document.querySelector('a[href$=\"components/attention.html\"]') || {}).href || ''")
        assert href.startswith("file://") and href.endswith("attention.html"), f"no file link to the attention page: {href!r}"
        folder_links = page.evaluate(
            "[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"
            ".filter(h => !h.startsWith('#') && !h.includes('://') && (h.endsWith('/') || h === '.' || h === '..'))"
        )
        assert not folder_links, f"links that open a folder listing from file://: {folder_links[:5]}"
        page.navigate(href)
        assert page.wait_for("location.href.endsWith('attention.html') && " + READY, timeout=45)
        assert page.evaluate("document.querySelector('h1').textContent").strip().startswith("Attention")
        assert page.evaluate("document.querySelectorAll('.arithmatex .katex').length") >= 3
    finally:
        page.close()


@pytest.fixture(scope="module", autouse=True)
def _keep_screens():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield


def test_the_attention_explorer_shows_the_chosen_words_row(server, browser):
    """Clicking a word shows its attention row: the weights of that head and query, from the page's own data, summing to 1."""
    page = browser.open(server + "walkthroughs/attention-with-numbers.html")
    try:
        assert page.wait_for(READY + " && document.querySelector('.tspec-attention-explorer[data-ready]') !== null", timeout=45)
        # choose the second sentence, head 2.3 and the word "it"
        page.evaluate(
            "(() => { const root = document.querySelector('.tspec-attention-explorer');"
            " const [sentence, head] = root.querySelectorAll('select');"
            " sentence.value = '1'; sentence.dispatchEvent(new Event('change'));"
            " head.value = String([...head.options].findIndex(o => o.text === 'head 2.3')); head.dispatchEvent(new Event('change'));"
            " [...root.querySelectorAll('button.tspec-token')].find(b => b.textContent === ' it').click(); })()"
        )
        shown = page.evaluate(
            "[...document.querySelectorAll('.tspec-attention-explorer .tspec-row .tspec-token')].map(e => Number(e.dataset.weight))"
        )
        expected = page.evaluate(
            "(() => { const d = JSON.parse(document.querySelector('.tspec-attention-explorer').getAttribute('data-attention'));"
            " const s = d.sentences[1]; const q = s.tokens.indexOf(' it'); return s.weights[s.heads.indexOf('2.3')][q]; })()"
        )
        assert shown == expected and len(shown) >= 2, (shown, expected)
        assert abs(sum(shown) - 1) < 0.02
        pressed = page.evaluate("document.querySelector('.tspec-attention-explorer button[aria-pressed=true]').textContent")
        assert pressed == " it"
    finally:
        page.close()


def test_the_conformance_matrix_fits_a_phone(server, browser):
    """At 390 px every backend column of the matrix is on screen: ids wrap at their dots, statuses are short words."""
    page = browser.open(server + "conformance.html", width=390, height=844, mobile=True)
    try:
        assert page.wait_for(READY, timeout=45)
        sizes = page.evaluate(
            "(() => { const t = document.querySelector('.tspec-matrix table');"
            " const box = t.closest('.md-typeset__scrollwrap') || t.parentElement;"
            " return [t.scrollWidth, box.clientWidth]; })()"
        )
        assert sizes[0] <= sizes[1] + 1, f"the matrix is {sizes[0]} px wide in a {sizes[1]} px column"
    finally:
        page.close()
