"""mkdocs hooks (``hooks:`` in mkdocs.yml): everything the site generates at build time.

* ``on_config``: fetch Mermaid and KaTeX from npm into the build cache (the site
  serves them itself: it works offline) and start the conformance runs in the
  background.
* ``on_files``: add the vendored JavaScript/CSS and the figures to the site.
* ``on_page_markdown``: expand ``<!-- gen:... -->`` directives and run the
  executable blocks of each page (see :mod:`tools.docs.render`).
"""

from __future__ import annotations

import os
import sys
import time

# One BLAS thread: the build runs next to the conformance runs on few cores, and
# oversubscribed BLAS threads made a 900×900 SVD eight times slower here.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# The repository this file is in must be the one imported: mkdocs restores sys.path after loading a hook,
# and an editable install elsewhere (another checkout) would otherwise supply spec/, backends/, ... .
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _put_root_first() -> None:
    if not sys.path or sys.path[0] != _ROOT:
        sys.path.insert(0, _ROOT)


_put_root_first()

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File  # noqa: E402

from tools.docs import apisrc, cache, conformance_runs, timing, vendor  # noqa: E402
from tools.docs.render import render_page  # noqa: E402

_started = 0.0
_vendored: dict = {}

# mkdocstrings reads the package from build/api-src/ (see tools.docs.apisrc); lay it out before any plugin reads it.
apisrc.lay_out()


# Pages in the nav that other work is still writing: until the file exists, its nav entry is left out
# (so the strict build does not fail on a page that is not there yet); once it exists, it is a page like any other.
PAGES_IN_PROGRESS = {"tutorial_backend.md"}


def _without_missing(nav, docs_dir: str):
    kept = []
    for entry in nav:
        if isinstance(entry, dict):
            ((title, target),) = entry.items()
            if isinstance(target, list):
                target = _without_missing(target, docs_dir)
                if target:
                    kept.append({title: target})
                continue
            if target in PAGES_IN_PROGRESS and not os.path.exists(os.path.join(docs_dir, target)):
                continue
            kept.append({title: target})
        else:
            kept.append(entry)
    return kept


def _results_section(docs_dir: str) -> dict | None:
    """A nav section listing docs/results/*.md, the pages measurement scripts write (titled by their first heading)."""
    folder = os.path.join(docs_dir, "results")
    pages = sorted(name for name in os.listdir(folder) if name.endswith(".md")) if os.path.isdir(folder) else []
    entries = []
    for name in pages:
        with open(os.path.join(folder, name), encoding="utf-8") as page:
            first = page.readline().strip()
        entries.append({first.lstrip("#").strip() if first.startswith("#") else name[:-3]: f"results/{name}"})
    return {"Measured results": entries} if entries else None


def on_config(config):
    global _started
    _put_root_first()
    for name in ("transformer_spec",):
        module = sys.modules.get(name)
        if module is not None and not os.path.abspath(module.__file__).startswith(_ROOT + os.sep):
            raise PluginError(
                f"{name} was imported from {module.__file__}, not from this checkout ({_ROOT}); "
                "build the docs from the checkout whose code they describe"
            )
    if config.nav:
        config.nav = _without_missing(config.nav, config.docs_dir)
        results = _results_section(config.docs_dir)
        if results:  # before the API reference
            titles = [next(iter(entry)) if isinstance(entry, dict) else entry for entry in config.nav]
            at = titles.index("API reference") if "API reference" in titles else len(config.nav)
            config.nav.insert(at, results)
    _started = time.perf_counter()
    timing.SECONDS.clear()
    try:
        with timing.timed("vendor"):
            vendored = vendor.site_files()
    except vendor.VendorError as error:
        raise PluginError(str(error)) from None
    _vendored.clear()
    _vendored.update(vendored)
    config.extra_javascript[:0] = list(vendor.JAVASCRIPT)
    config.extra_css[:0] = list(vendor.CSS)
    conformance_runs.start()
    return config


def on_files(files, config):
    from tools.docs.figures import DRAWN, FIGURES, render_svg

    for site_path, local in _vendored.items():
        files.append(File.generated(config, site_path, abs_src_path=str(local)))
    DRAWN.clear()
    for name in FIGURES:
        try:
            with timing.timed(f"figure {name}"):
                data = cache.cached_bytes("figures", (name, "svg"), lambda name=name: render_svg(name))
        except Exception as error:
            raise PluginError(f"figure {name!r} (tools/docs/figures.py) failed: {type(error).__name__}: {error}") from error
        if data:
            DRAWN[name] = f"figures/{name}.svg"
            files.append(File.generated(config, DRAWN[name], content=data))
    from mkdocs.utils import meta

    from tools.docs.render import run_ahead

    # Read as mkdocs reads them (Page.read_source), so that a page's cache key is the same text it will render.
    run_ahead([(file.src_uri, meta.get_data(file.content_string)[0]) for file in files.documentation_pages()])
    return files


def on_page_markdown(markdown, page, config, files):
    try:
        with timing.timed(f"page {page.file.src_uri}"):
            return render_page(markdown, page.file.src_uri)
    except Exception as error:
        raise PluginError(f"{type(error).__name__}: {error}") from error


def on_post_page(output, page, config):
    """Fill in the deferred generators (see tools.docs.generators.DEFERRED) now that every page is rendered."""
    import markdown

    from tools.docs.generators import DEFERRED

    for placeholder, make in DEFERRED.items():
        if placeholder in output:
            try:
                with timing.timed(f"deferred {placeholder}"):
                    text = make()
            except Exception as error:
                raise PluginError(f"docs/{page.file.src_uri}: {placeholder} failed: {type(error).__name__}: {error}") from error
            html = markdown.Markdown(extensions=config.markdown_extensions, extension_configs=config.mdx_configs).convert(text)
            output = output.replace(placeholder, html)
    return output


def on_build_error(error):
    from tools.docs.render import stop_running_ahead

    stop_running_ahead()
    conformance_runs.stop()


def on_post_build(config):
    from tools.docs.render import stop_running_ahead

    stop_running_ahead()
    conformance_runs.stop()
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"INFO    -  tspec docs: {time.perf_counter() - _started:.1f} s since the build started; CPU "
        f"{own.ru_utime + own.ru_stime:.1f} s in mkdocs + {children.ru_utime + children.ru_stime:.1f} s in commands and "
        f"conformance runs; slowest: {timing.summary()} (cache: {cache.path_for('pages').parent.parent})",
        file=sys.stderr,
    )
