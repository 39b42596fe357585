"""The documentation site: it builds strictly, every example on it runs, and it is generated from the code.

``mkdocs build --strict`` fails on any warning (a broken link or anchor, a
page missing from the navigation) and on any error of the build hooks in
``tools/docs`` (a failing ``exec`` block or command, a figure that cannot be
drawn, a fenced block of a kind that is not executed). The python examples
are run here, each in a fresh namespace inside a scratch folder.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from transformer_spec.spec import softmax as softmax_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ is not an installed package

from tools.docs import specdoc, vendor  # noqa: E402
from tools.docs.blocks import VERIFIED_ELSEWHERE, BlockError, find_blocks, requirement_missing, run_python, write_file  # noqa: E402
from tools.docs.paths import DOCS, ROOT  # noqa: E402
from tools.docs.testing import built_site, page_blocks, pages  # noqa: E402

BLOCKS = page_blocks()


@pytest.fixture(scope="module")
def site() -> Path:
    build = built_site()
    assert build.returncode == 0, f"mkdocs build --strict failed (exit {build.returncode}):\n{build.output[-8000:]}"
    print(f"docs built in {build.seconds:.1f} s")
    return build.site


def html(site: Path, page: str) -> str:
    """The HTML of a page (``use_directory_urls: false``: docs/a/b.md is site/a/b.html, so file:// works)."""
    return (site / f"{page}.html").read_text() if page else (site / "index.html").read_text()


def test_site_builds_strictly(site):
    assert (site / "index.html").exists()
    assert (site / "components" / "softmax.html").exists()


@pytest.mark.parametrize("block,files", BLOCKS, ids=[f"{b.path}:{b.line}" for b, _ in BLOCKS])
def test_python_example_runs(block, files, tmp_path):
    missing = requirement_missing(block)
    if missing:
        pytest.skip(f"{block.where} needs {missing}, which is not in this build yet")
    for file_block in files:
        write_file(file_block, tmp_path)
    if block.file:
        block = type(block)(block.path, block.line, "python", {}, block.body)  # a file the page writes: run it as a script
    run_python(block, tmp_path)


def test_every_page_has_only_executable_blocks():
    for path in pages():
        find_blocks(path.read_text(), path.relative_to(DOCS).as_posix())  # raises BlockError on any other kind


def test_pages_exempt_from_the_block_rules_have_a_test_of_their_own():
    for page, test in VERIFIED_ELSEWHERE.items():
        if (DOCS / page).exists():
            assert (ROOT / test).exists(), f"docs/{page} says {test} checks its blocks, but there is no such test"
            assert f"docs/{page}" in (ROOT / test).read_text() or page in (ROOT / test).read_text()


def test_a_block_that_would_not_run_is_refused():
    with pytest.raises(BlockError, match="allow only"):
        find_blocks("text\n\n```bash\nrm -rf /\n```\n", "example.md")
    with pytest.raises(BlockError, match="must say `exec`"):
        find_blocks("```console\n$ ls\n```\n", "example.md")


def test_every_spec_component_has_its_invariants_on_a_page():
    sources = "\n".join(p.read_text() for p in pages())
    shown = set(re.findall(r"<!-- gen:invariants name=(\w+)[ -]", sources))
    assert set(specdoc.spec_modules()) <= shown, f"components without a page: {sorted(set(specdoc.spec_modules()) - shown)}"


def test_invariant_ids_and_statements_reach_the_site(site):
    pages_html = "\n".join(p.read_text() for p in (site / "components").rglob("*.html"))
    for module in specdoc.spec_modules().values():
        for invariant in module.COMPONENT.invariants:
            assert f"<code>{invariant.id}</code>" in pages_html, f"{invariant.id} is missing from the component pages"


def test_spec_math_reaches_the_site_unchanged(site):
    softmax = html(site, "components/softmax")
    for line in specdoc.parse(softmax_spec).sections[0][1].splitlines():
        if line.startswith("$$"):
            latex = line.strip("$")
            assert latex in softmax.replace("&amp;", "&"), f"the softmax math {latex!r} is not on the page"


def test_reference_code_is_the_real_source(site):
    import inspect

    from transformer_spec.backends.numpy import NumpyBackend

    page = html(site, "components/softmax")
    text = re.sub(r"<[^>]+>", "", page).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    for line in inspect.getsource(NumpyBackend._softmax).splitlines():
        assert line.strip() in text


def test_executed_output_is_shown(site):
    page = html(site, "components/softmax")
    assert "Output (captured when these docs were built)" in page
    assert "naive:" in page and "nan" in page  # the overflow example really overflowed


def test_figures_are_generated_and_linked(site):
    figures = sorted((site / "figures").glob("*.svg"))
    assert len(figures) >= 10
    for figure in figures:
        text = figure.read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text, figure.name
        assert "<text" in text, f"{figure.name}: its text was drawn as outlines, not kept as text"
    assert 'src="../figures/softmax_temperatures.svg"' in html(site, "components/softmax")


def test_javascript_is_served_by_the_site_itself(site):
    for path in (*vendor.JAVASCRIPT, *vendor.CSS):
        assert (site / path).stat().st_size > 1000, path
    assert list((site / "assets/vendor/katex/fonts").glob("*.woff2"))
    for page in site.rglob("*.html"):
        text = page.read_text()
        external = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', text)
        assert not external, f"{page.relative_to(site)} loads {external}"
        assert "fonts.googleapis.com" not in text


def test_no_raw_math_delimiters_outside_math_elements(site):
    for name in ("components/softmax", "components/attention", "components/positional-encoding"):
        page = html(site, name)
        page = re.sub(r'<(span|div) class="arithmatex">.*?</\1>', "", page, flags=re.S)
        page = re.sub(r"<(pre|code)\b.*?</\1>", "", page, flags=re.S)
        assert "$$" not in page, f"{name}: unrendered $$"


def test_conformance_matrix_comes_from_a_real_run(site):
    page = html(site, "conformance")
    assert "<code>softmax.<wbr>sums_<wbr>to_<wbr>one</code>" in page
    assert 'class="tspec-status tspec-status--passed"' in page
    assert 'conformance.run("NAME"' in page


def test_missing_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TSPEC_DOCS_CACHE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(vendor.VendorError, match="npm is not installed"):
        vendor.ensure(vendor.KATEX)


def test_pages_are_files_so_the_site_works_from_disk(site):
    """use_directory_urls: false — docs/a/b.md is site/a/b.html, and no link points at a folder."""
    assert not [p for p in site.rglob("index.html") if p.parent != site], "a page was written as a folder"
    for page in ("index", "components/attention", "walkthroughs/generation-step-by-step"):
        links = re.findall(r'href="([^"#:]+)"', html(site, page))
        folders = [link for link in links if link.endswith("/") or link in (".", "..")]
        assert not folders, f"{page}: links to folders {folders[:5]}"


def test_the_apple_toy_selects_the_related_word():
    """The toy of the lecture must show selection, not averaging: apple's weight goes to orange / phone."""
    from tools.docs.walkthroughs import TOY_SENTENCES, toy_attention

    for sentence, related, feature in zip(TOY_SENTENCES, ("orange", "phone"), (0, 1)):
        toy = toy_attention(sentence)
        weights = toy["weights"][-1]
        chosen = toy["words"][int(weights.argmax())]
        assert chosen == related and weights.max() > 0.5, f"{sentence}: apple's weights {weights.round(2)}"
        assert toy["out"][-1][feature] > 0.5 > toy["out"][-1][1 - feature]


def test_generation_walkthrough_follows_generate():
    """Each step of the walk-through picks the token model.generate picks (it raises otherwise), sampled and greedy."""
    from tools.docs import inspect_model
    from tools.docs.walkthroughs import generation_trace

    if inspect_model.shipped() is None:
        pytest.skip("no shipped default model in this build")
    for temperature in (0.0, 1.0):
        trace = generation_trace("Once upon a", 4, 0, temperature)
        assert len(trace) == 4
        for step in trace:
            low, high = step["interval"]
            assert temperature == 0 or low <= step["u"] < high  # u falls in the chosen token's stretch


def test_the_page_forward_pass_is_the_shipped_model():
    """tools/docs/inspect_model.forward (attention maps, walk-throughs) gives the model's own logits."""
    from tools.docs import inspect_model

    model = inspect_model.shipped()  # checks forward() against model.logits, raising on any difference
    if model is None:
        pytest.skip("no shipped default model in this build")
    forward = inspect_model.forward(model, model.tokenizer.encode("The bear ate the honey."))
    for weights in forward.attention:
        assert np.allclose(weights.sum(axis=-1), 1) and np.allclose(np.triu(weights, 1), 0)


def test_generated_text_escapes_tag_like_prose():
    assert specdoc.escape_prose('seen ("<unk>") and `<bos>` in code') == 'seen ("&lt;unk&gt;") and `<bos>` in code'
    assert specdoc.escape_prose("$$a<b>c$$ and <grad f, v>") == "$$a<b>c$$ and &lt;grad f, v&gt;"
    assert "`transformer_spec.spec`" in specdoc.rst_to_markdown(":mod:`transformer_spec.spec`")


def test_cache_keys_follow_their_inputs(tmp_path, monkeypatch):
    """A generator's cached output is keyed by the hash of its inputs; conformance reports only by the code they check."""
    from tools.docs import cache

    assert "docs/results" in cache.SOURCE_FOLDERS and "tools/docs" in cache.SOURCE_FOLDERS
    assert "tools/docs" not in cache.CONFORMANCE_INPUTS and "transformer_spec" not in cache.CONFORMANCE_INPUTS
    assert "tools/docs" not in cache.PAGE_INPUTS and "tools/docs/blocks.py" in cache.PAGE_INPUTS
    monkeypatch.setenv("TSPEC_DOCS_CACHE", str(tmp_path))
    calls = []
    first = cache.cached_text("test", ("x",), lambda: calls.append(1) or "made")
    again = cache.cached_text("test", ("x",), lambda: calls.append(1) or "made again")
    assert (first, again, len(calls)) == ("made", "made", 1)


def test_nothing_on_the_site_is_still_waiting_to_be_written(site):
    """Every part of the project a page can show exists now: a "not yet" note means a generator lost track of it
    (as when the application moved from tspec/ to transformer_spec/ and the figures of the default model vanished)."""
    notes = ("not in this build yet", "Figure not drawn yet", "Appears once", "is not part of the `tspec` command line yet")
    for page in site.rglob("*.html"):
        text = page.read_text()
        found = [note for note in notes if note in text]
        assert not found, f"{page.relative_to(site)} still says {found}"
