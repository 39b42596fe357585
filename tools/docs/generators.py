"""The ``<!-- gen:NAME key=value ... -->`` directives of the pages.

A directive stands alone on a line and is replaced, at build time, by the
Markdown its generator returns. Generators compute what they show from the
project's code; none of them holds a number of its own.
"""

from __future__ import annotations

import importlib
import inspect
import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import examples as ex
from . import specdoc
from .paths import ROOT


@dataclass
class Context:
    src_uri: str  # the page, relative to docs/

    def link(self, target: str) -> str:
        """A link from this page to ``target`` (a path relative to docs/)."""
        return posixpath.relpath(target, posixpath.dirname(self.src_uri) or ".")


GENERATORS: dict[str, Callable[..., str]] = {}


def generator(fn: Callable[..., str]) -> Callable[..., str]:
    GENERATORS[fn.__name__] = fn
    return fn


def _cell(text: str) -> str:
    return specdoc.escape_prose(text).replace("|", "\\|").replace("\n", " ")


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


# ---------------------------------------------------------------------------- from spec/


def _component_missing(name: str, optional: str) -> bool:
    """True when an ``optional=1`` directive names a spec component this build does not have yet."""
    return bool(optional) and name not in specdoc.spec_modules()


@generator
def spec(ctx: Context, name: str, part: str = "math", level: str = "3", optional: str = "") -> str:
    """Sections of a spec module's docstring (``part`` = math, contract or references)."""
    if _component_missing(name, optional):
        return _not_yet(f"spec/{name}.py")
    text = specdoc.render_sections(name, part, int(level))
    if not text:
        raise ValueError(f"spec/{name}: its docstring has no {part} sections")
    return text


@generator
def spec_source_note(ctx: Context, name: str, optional: str = "") -> str:
    if _component_missing(name, optional):
        return ""
    doc = specdoc.parse(specdoc.component_module(name))
    return f"*Rendered at build time from the docstring of `{doc.path}`.*"


@generator
def interface(ctx: Context, name: str, optional: str = "") -> str:
    if _component_missing(name, optional):
        return ""
    return specdoc.interface(name)


@generator
def invariants(ctx: Context, name: str, optional: str = "") -> str:
    from transformer_spec.conformance.registry import load_all_checks

    if _component_missing(name, optional):
        return _not_yet(f"spec/{name}.py")
    comp = specdoc.component(name)
    path = specdoc.parse(specdoc.component_module(name)).path
    checks = load_all_checks()
    checked = [inv.id for inv in comp.invariants if inv.id in checks]
    files = sorted({Path(inspect.getsourcefile(checks[i].fn)).relative_to(ROOT).as_posix() for i in checked})
    where = (
        f"{len(checked)} of them have a check in the conformance suite ({', '.join(f'`{f}`' for f in files)}); "
        f"[Conformance]({ctx.link('conformance.md')}) shows each backend's verdict."
        if checked
        else "None of them is part of the conformance suite."
    )
    return (
        f"The {len(comp.invariants)} invariants of `{comp.name}`, read from `COMPONENT.invariants` in `{path}`. "
        f"Each id names its check and its line in a conformance report; {where}\n\n" + specdoc.invariants_table(name)
    )


def _not_yet(what: str) -> str:
    return (
        f'!!! note "Appears once `{what}` exists"\n    This part of the page is generated from `{what}`, which is not '
        "in this build yet. When it exists, the docs build includes it here."
    )


def _module_exists(ref: str) -> bool:
    """Whether the module of ``ref`` imports here (it, or a library it needs, may not be installed or written yet)."""
    try:
        importlib.import_module(ref.partition(":")[0])
    except ModuleNotFoundError:
        return False
    return True


@generator
def source(ctx: Context, ref: str, optional: str = "") -> str:
    """The real source of ``ref``; with ``optional=1``, a note while its module does not exist yet."""
    if optional and not _module_exists(ref):
        return _not_yet(ref.partition(":")[0])
    return specdoc.source(ref)


@generator
def module_doc(ctx: Context, module: str, level: str = "3", optional: str = "") -> str:
    """A module's docstring (any module written in the spec's docstring style), rendered like a spec module's."""
    if optional and not _module_exists(module):
        return _not_yet(module)
    doc = specdoc.parse(importlib.import_module(module))
    hashes = "#" * int(level)
    chunks = [specdoc.rst_to_markdown(doc.intro)] if doc.intro else []
    chunks += [f"{hashes} {specdoc.rst_to_markdown(title)}\n\n{specdoc.rst_to_markdown(body)}" for title, body in doc.sections]
    return f"*Rendered at build time from the docstring of `{doc.path}`.*\n\n" + "\n\n".join(chunks)


# ---------------------------------------------------------------------------- figures


@generator
def figure(ctx: Context, name: str) -> str:
    from .figures import DRAWN, FIGURES

    fig = FIGURES[name]
    if name not in DRAWN:
        return f'!!! note "Figure not drawn yet"\n    {fig.missing}'
    return (
        # The image links to itself: on a phone the column is narrow, and the SVG opened on its own can be zoomed.
        f'<figure markdown="span">\n  [![{fig.alt}]({ctx.link(DRAWN[name])})]({ctx.link(DRAWN[name])})\n'
        f"  <figcaption>{fig.alt} <em>(Drawn when these docs were built: <code>tools/docs/figures.py</code>, "
        f"<code>{name}</code>. Select the figure to open it full size.)</em></figcaption>\n</figure>"
    )


# ---------------------------------------------------------------------------- softmax


@generator
def softmax_example(ctx: Context) -> str:
    rows = ex.softmax_table()
    total = rows[0]["total"]
    lines = ["| next word | score $x_i$ | $e^{x_i}$ | probability $e^{x_i} / \\sum_j e^{x_j}$ |", "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['word']} | {r['score']:g} | {r['exp']:.3f} | {r['p']:.4f} ({_pct(r['p'])}) |")
    lines.append(f"| **sum** | | **{total:.3f}** | **{sum(r['p'] for r in rows):.4f}** |")
    top = rows[0]
    sharp, flat = ex.softmax_at(min(ex.SOFTMAX_TEMPERATURES)), ex.softmax_at(max(ex.SOFTMAX_TEMPERATURES))
    return (
        "\n".join(lines)
        + f"\n\nThe exponentials add up to {total:.3f}; dividing each by that sum gives probabilities that add up to one. "
        f"A score {top['score'] - rows[1]['score']:g} higher than another becomes a probability "
        f"$e^{{{top['score'] - rows[1]['score']:g}}} = {top['exp'] / rows[1]['exp']:.2f}$ times larger: "
        f"*{top['word']}* gets {_pct(top['p'])}, *{rows[1]['word']}* {_pct(rows[1]['p'])}. "
        f"Dividing the scores by a temperature $T$ before the softmax sharpens or flattens this: at $T = {min(ex.SOFTMAX_TEMPERATURES):g}$ "
        f"*{top['word']}* gets {_pct(sharp[0])}, at $T = {max(ex.SOFTMAX_TEMPERATURES):g}$ only {_pct(flat[0])}."
    )


# ---------------------------------------------------------------------------- attention


@generator
def attention_toy_numbers(ctx: Context) -> str:
    lines = [
        "| sentence | query word | weight on *bear* | weight on *honey* | largest other weight |",
        "|---|---|---:|---:|---:|",
    ]
    for which in ex.ATTENTION_SENTENCES:
        words, weights = ex.attention_toy(which)
        for query in ("it", which):
            row = weights[words.index(query)]
            bear, honey = row[words.index("bear")], row[words.index("honey")]
            others = [w for j, w in enumerate(row) if words[j] not in ("bear", "honey")]
            lines.append(f"| ... it was {which} | {query} | {bear:.2f} | {honey:.2f} | {max(others):.2f} |")
    keys = ", ".join(f"*{w}* = {k}" for w, k in ex.ATTENTION_KEYS.items())
    queries = ", ".join(f"*{w}* = {q}" for w, q in ex.ATTENTION_QUERIES.items())
    return (
        f"The toy keys (animal, food) are {keys}, every other word (0, 0); the queries are {queries}, "
        "every other word (0, 0). The weights below are what `backend.attention(q, k, v, causal=True)` returns:\n\n"
        + "\n".join(lines)
    )


# ---------------------------------------------------------------------------- positions


@generator
def positional_speeds(ctx: Context, dim: str = "64", base: str = "10000") -> str:
    d, b = int(dim), float(base)
    lines = [
        "| pair $i$ | angle per position $\\omega_i = \\text{base}^{-2i/d}$ | positions per full turn $2\\pi/\\omega_i$ |",
        "|---:|---:|---:|",
    ]
    for i in (0, 1, 2, 4, 8, 16, d // 2 - 1):
        omega = b ** (-2 * i / d)
        lines.append(f"| {i} | {omega:.4g} rad | {2 * np.pi / omega:,.1f} |")
    return f"With $d = {d}$ and base {b:g}:\n\n" + "\n".join(lines)


# ---------------------------------------------------------------------------- blocks, loss


@generator
def gpt2_parameters_table(ctx: Context) -> str:
    groups = ex.gpt2_parameter_groups()
    total = sum(groups.values())
    config = ", ".join(f"`{k}={v}`" for k, v in ex.GPT2_SMALL.items())
    lines = ["| group | parameters | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {count:,} | {_pct(count / total)} |" for name, count in groups.items()]
    lines.append(f"| **total** | **{total:,}** | |")
    return (
        f"Counting the parameter layout of `transformer_spec.spec.model.parameter_shapes` for GPT-2 small ({config}, tied embeddings):\n\n"
        + "\n".join(lines)
    )


@generator
def loss_numbers(ctx: Context) -> str:
    lines = [
        "| vocabulary size V | `cross_entropy` of equal logits | log V | perplexity $e^{\\mathcal L}$ |",
        "|---:|---:|---:|---:|",
    ]
    for V in (2, 512, 50257):
        loss, log_v = ex.uniform_loss(V)
        lines.append(f"| {V:,} | {loss:.4f} | {log_v:.4f} | {np.exp(loss):,.1f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- sampling


@generator
def sampling_numbers(ctx: Context) -> str:
    vocabulary, p = ex.sampling_distribution()
    parts = []
    for options in ({"top_k": ex.SAMPLING_TOP_K}, {"top_p": ex.SAMPLING_TOP_P}):
        kept = ex.tokens_ever_sampled(**options)
        mass = sum(p[i] for i in kept)
        rows = sorted(kept.items(), key=lambda kv: -p[kv[0]])
        label = ", ".join(f"`{k}={v}`" for k, v in options.items())
        lines = [
            f"With {label}, `sample` returned {len(kept)} different words over {ex.SAMPLING_GRID:,} evenly spaced values of $u$; "
            f"together they had {_pct(mass)} of the original probability.",
            "",
            "| word | model probability | renormalised $\\tilde p$ | how often `sample` returned it |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {vocabulary[i]} | {p[i]:.4f} | {p[i] / mass:.4f} | {freq:.4f} |" for i, freq in rows]
        parts.append("\n".join(lines))
    return (
        f'The distribution is the 3-gram model\'s after "{ex.SAMPLING_CONTEXT}" '
        f"(trained on {ex.NGRAM_TRAINING['n_documents']:,} generated documents; {len(vocabulary):,} words, "
        f"{int((p > 1e-3).sum())} of them above 0.1%).\n\n" + "\n\n".join(parts)
    )


# ---------------------------------------------------------------------------- before transformers


@generator
def ngram_table(ctx: Context) -> str:
    _, held_out = ex.corpus()
    lines = [
        "| n | context words | perplexity | next-word accuracy | held-out contexts never seen in training |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in ex.NGRAM_ORDERS:
        result = ex.ngram_model(n).evaluate(held_out)
        lines.append(
            f"| {n} | {n - 1} | {result.perplexity:.2f} | {_pct(result.next_word_accuracy)} | {_pct(result.unseen_context_rate)} |"
        )
    model = ex.ngram_model(ex.NGRAM_ORDERS[0])
    return (
        f"Trained on {ex.NGRAM_TRAINING['n_documents']:,} documents of `generate_corpus(seed={ex.NGRAM_TRAINING['seed']})`, "
        f"scored on {ex.NGRAM_HELD_OUT['n_documents']} held-out documents (`seed={ex.NGRAM_HELD_OUT['seed']}`), "
        f"vocabulary {len(model.vocabulary):,} words:\n\n" + "\n".join(lines)
    )


@generator
def ngram_suggestions(ctx: Context) -> str:
    contexts = ("once upon a", "the capital of", "the cat ate the", "what is the capital of nigeria ?")
    lines = ["| typed so far | 1-gram suggests | 3-gram suggests | 10-gram suggests |", "|---|---|---|---|"]
    for context in contexts:
        cells = []
        for n in ex.NGRAM_ORDERS:
            cells.append(", ".join(f"{w} ({p:.2f})" for w, p in ex.ngram_model(n).suggest(context, k=3)))
        lines.append(f"| {context} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@generator
def perceptron_summary(ctx: Context) -> str:
    result = ex.perceptron()
    report, model = result["report"], result["model"]
    mistakes = ", ".join(str(m) for m in report.mistakes_per_epoch)
    lines = ["| sentence | score | prediction |", "|---|---:|---|"]
    for text in ex.PERCEPTRON_EXAMPLES:
        score = model.score(text)
        lines.append(f"| {text} | {score:+g} | {'happy' if model.predict(text) > 0 else 'sad'} |")
    return (
        f"Trained on {result['n_training']} generated sentences: mistakes per pass {mistakes}; "
        f"{'it converged (a pass with no mistakes)' if report.converged else 'it did not converge'} after {report.epochs_run} passes. "
        f"On {result['n_held_out']} held-out sentences it is right {_pct(result['accuracy'])} of the time.\n\n" + "\n".join(lines)
    )


@generator
def word_neighbours(ctx: Context) -> str:
    vocabulary, vectors = ex.word_vectors()
    lines = ["| word | five nearest words (cosine similarity) |", "|---|---|"]
    for word in ex.NEIGHBOUR_QUERIES:
        lines.append(f"| {word} | " + ", ".join(f"{w} ({s:.2f})" for w, s in ex.nearest(vocabulary, vectors, word)) + " |")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    happy, sad = (unit[vocabulary.index(w)] for w in ("happy", "sad"))
    cosine = float(happy @ sad)
    rank = 1 + sum(1 for i, w in enumerate(vocabulary) if w not in ("happy", "sad") and float(unit[i] @ happy) > cosine)
    if cosine >= 0.5:
        catch = (
            f"One catch: *happy* and *sad* are close (cosine similarity {cosine:.2f}; *sad* is number {rank} among "
            '*happy*\'s neighbours). Opposites are used in the same places ("I am so ... about the park"), and '
            "co-occurrence is all this method sees."
        )
    else:
        catch = (
            f"*happy* and *sad* are not close here (cosine similarity {cosine:.2f}; *sad* is number {rank} among "
            "*happy*'s neighbours): in this corpus the two words rarely share their neighbours. In large real "
            "corpora opposites often do end up close, because they are used in the same places, and co-occurrence "
            "is all this method sees."
        )
    return (
        f"{len(vocabulary):,} words with at least {ex.WORD_VECTOR_MIN_COUNT} occurrences, a window of "
        f"{ex.WORD_VECTOR_WINDOW} words each side, {ex.WORD_VECTOR_DIM} dimensions:\n\n" + "\n".join(lines) + f"\n\n{catch}"
    )


@generator
def default_model_neighbours(ctx: Context) -> str:
    from .default_model import load

    model = load()
    if model is None:
        return (
            '!!! note "Appears once the default model ships"\n    The nearest neighbours in the default model\'s own '
            "embedding table are computed from `transformer_spec.api.load_model`, which does not exist in this build yet."
        )
    table = model.params["wte"]
    lines = ["| word | five nearest tokens in the default model's embedding table |", "|---|---|"]
    for word in ex.NEIGHBOUR_QUERIES:
        ids = model.tokenizer.encode(" " + word)
        if len(ids) != 1:
            continue
        unit = table / np.linalg.norm(table, axis=1, keepdims=True)
        similarity = unit @ unit[ids[0]]
        order = [i for i in np.argsort(-similarity, kind="stable") if i != ids[0]][:5]
        cells = ", ".join(f"{model.tokenizer.decode([int(i)]).strip()!s} ({similarity[i]:.2f})" for i in order)
        lines.append(f"| {word} | {cells} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- backends


@generator
def backends_table(ctx: Context) -> str:
    """One row per installed built-in backend: what it is, and what it can do (its ``capabilities()``, read from it)."""
    from transformer_spec.backends import BUILTIN, available_backends, load_backend

    available = set(available_backends())
    rows, missing, capability_names = [], [], []
    for name, (module, class_name, _package, extra) in BUILTIN.items():
        if name not in available:
            missing.append(f"`{name}` (install with `pip install 'transformer-spec[{extra}]'`)")
            continue
        instance = load_backend(name)
        cls = type(instance)
        options = "none"
        if cls.__init__ is not object.__init__:
            parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
            options = ", ".join(f"`{p.replace(annotation=inspect.Parameter.empty)}`" for p in parameters) or "none"
        capabilities = instance.capabilities() if callable(getattr(instance, "capabilities", None)) else {}
        capability_names += [c for c in capabilities if c not in capability_names]
        rows.append((name, f"{module}.{class_name}", instance, options, capabilities))
    # Two tables, so that neither needs a screen wider than a phone's to be read: what each backend is, and what it can do.
    what = ["| `--backend` | class | float dtypes | default device | constructor options |", "|---|---|---|---|---|"]
    can = ["| `--backend` | " + " | ".join(c for c in capability_names) + " |", "|---|" + "---|" * len(capability_names)]
    for name, where, instance, options, capabilities in rows:
        what.append(f"| `{name}` | `{where}` | {', '.join(instance.dtypes)} | {instance.device} | {options} |")
        can.append(f"| `{name}` | " + " | ".join(_cell(str(capabilities.get(c, "–"))) for c in capability_names) + " |")
    note = f"\n\nNot installed where these docs were built: {', '.join(missing)}." if missing else ""
    capability_table = (
        "\n\nWhat each one can do, from its `capabilities()` (asked by capability, never by name):\n\n" + "\n".join(can)
        if capability_names
        else ""
    )
    return "\n".join(what) + capability_table + note


@generator
def kernels_table(ctx: Context) -> str:
    from transformer_spec.backends.base import KERNELS

    lines = ["| kernel | the primitive it computes |", "|---|---|"]
    lines += [
        f"| `{name}` | `{meaning.split(' — ')[0]}`" + (f" — {meaning.split(' — ', 1)[1]}" if " — " in meaning else "") + " |"
        for name, meaning in KERNELS.items()
    ]
    return f"`transformer_spec.backends.base.KERNELS`, {len(KERNELS)} kernels:\n\n" + "\n".join(lines)


@generator
def benchmarks_table(ctx: Context) -> str:
    """Every benchmark result file in benchmarks/results/, as tables: operations × backends, or its list of records."""
    folder = ROOT / "benchmarks" / "results"
    files = sorted(folder.glob("*.json")) if folder.exists() else []
    parts = []
    for path in files:
        data = json.loads(path.read_text())
        name = path.relative_to(ROOT).as_posix()
        if isinstance(data, dict) and isinstance(data.get("seconds"), dict):
            parts.append(_seconds_table(name, data))
        elif isinstance(data, dict):
            table = _records_table(name, data)
            if table:
                parts.append(table)
    if not parts:
        return (
            '!!! note "No benchmark results yet"\n    There is no result file in `benchmarks/results/` in this build, '
            "so there is nothing to show here. The tables are generated from those JSON files as soon as they exist."
        )
    return "\n\n".join(parts)


def _value(value) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _records_table(name: str, data: dict) -> str | None:
    """The first list of records in a result file (``results``, ``summary``, ``engines``, ...) as a readable table.

    Runs that differ only by their seed (a seed sweep) are summed up in one row instead of one row per seed;
    the file's settings (its scalar fields) and its ``note`` are said in words above the table.
    """
    key, records = next(
        ((k, v) for k, v in data.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)), (None, None)
    )
    if records is None:
        return None
    machine = data.get("machine")
    where = ", ".join(f"{k} {v}" for k, v in machine.items()) if isinstance(machine, dict) else "not recorded"
    settings = [f"{k.replace('_', ' ')} {_value(v)}" for k, v in data.items() if isinstance(v, (str, int, float)) and k != "note"]
    intro = (
        f"#### `{Path(name).name}`\n\nFrom `{name}`" + (f" ({'; '.join(settings)})" if settings else "") + f"; machine: {where}."
    )
    if data.get("note"):
        intro += f" {_cell(str(data['note']))}"
    if "seed" in records[0] and len(records) > 3:
        return intro + "\n\n" + _seed_sweep_summary(records)
    columns = [
        c
        for c in dict.fromkeys(k for r in records for k in r)
        if all(isinstance(r.get(c), (str, int, float, bool, type(None))) for r in records)
    ]
    lines = ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |", "|" + "---|" * len(columns)]
    for r in records:
        lines.append("| " + " | ".join(_cell(_value(r.get(c))) for c in columns) + " |")
    return intro + f" Its `{key}`:\n\n" + "\n".join(lines)


def _seed_sweep_summary(records: list[dict]) -> str:
    """Runs with one seed each, as one row: how many, which seeds, the range of each number, every failure."""
    seeds = [r["seed"] for r in records]
    parts = [f"{len(records)} runs, seeds {min(seeds)} to {max(seeds)}"]
    for column in dict.fromkeys(k for r in records for k in r):
        values = [r.get(column) for r in records]
        if column == "seed":
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            low, high = min(values), max(values)
            parts.append(
                f"{column.replace('_', ' ')} {_value(low)}" + (f" to {_value(high)}" if high != low else " in every run")
            )
        elif all(isinstance(v, list) for v in values):
            total = sum(len(v) for v in values)
            failing = [str(r["seed"]) for r, v in zip(records, values) if v]
            parts.append(
                f"{column.replace('_', ' ')}: {total} in all"
                + (f" (seeds {', '.join(failing)})" if failing else " (none in any run)")
            )
    return "| summary |\n|---|\n| " + "; ".join(parts) + " |"


def _seconds_table(name: str, data: dict) -> str:
    """``{"machine": {...}, "seconds": {operation: {backend: seconds}}}`` as operations × backends, in milliseconds."""
    seconds = data["seconds"]
    backends = list(dict.fromkeys(b for row in seconds.values() for b in row))
    lines = ["| operation | " + " | ".join(f"`{b}` (ms)" for b in backends) + " |", "|---|" + "---:|" * len(backends)]
    for operation, row in seconds.items():
        cells = [f"{1000 * row[b]:.3g}" if isinstance(row.get(b), (int, float)) else "–" for b in backends]
        lines.append(f"| {operation} | " + " | ".join(cells) + " |")
    machine = data.get("machine")
    where = ", ".join(f"{k} {v}" for k, v in machine.items()) if isinstance(machine, dict) else "not recorded"
    return f"#### `{Path(name).name}`\n\nSeconds per call from `{name}` (machine: {where}), in milliseconds:\n\n" + "\n".join(
        lines
    )


# ---------------------------------------------------------------------------- conformance


# Statuses are words in coloured badges (extra.css), never emoji: without an emoji font (a plain Debian
# machine) emoji render as empty boxes.
STATUS_WORD = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip", "xfailed": "xfail", "xpassed": "xpass"}


def status_badge(status: str) -> str:
    word = STATUS_WORD.get(status, "not run")
    kind = status if status in ("passed", "failed", "error", "skipped") else "other"
    return f'<span class="tspec-status tspec-status--{kind}">{word}</span>'


def _breakable_id(identifier: str) -> str:
    """An invariant id that may wrap after its dots and underscores (a phone screen is narrower than the longest id)."""
    return "<code>" + identifier.replace(".", ".<wbr>").replace("_", "_<wbr>") + "</code>"


# Generators whose result is filled in only after every page has been rendered (by the post_page hook), so
# that the build does other work while it waits for them: placeholder → a function returning Markdown.
DEFERRED: dict[str, Callable[[], str]] = {}


def deferred(name: str, make: Callable[[], str]) -> str:
    placeholder = f'<div data-tspec-deferred="{name}"></div>'
    DEFERRED[placeholder] = make
    return placeholder


@generator
def conformance_matrix(ctx: Context) -> str:
    """The matrix waits for the background conformance runs, the slowest part of a cold build: deferred."""
    return deferred("conformance_matrix", _conformance_matrix)


def _conformance_matrix() -> str:
    from transformer_spec import spec

    from . import conformance_runs as runs

    reports = runs.reports()
    names = list(reports)
    done = {n: r for n, r in reports.items() if isinstance(r, dict)}
    header = "| invariant | " + " | ".join(f"`{n}`" for n in names) + " |"
    lines = [header, "|---|" + "---|" * len(names)]
    status = {n: {res["id"]: res["status"] for res in r["results"]} for n, r in done.items()}
    # Rows: every invariant any run reported, grouped by component in pipeline order (components the
    # suite checks beyond spec.COMPONENTS, if any, come last in the order the runner reported them).
    statements: dict[str, dict[str, str]] = {}
    for r in done.values():
        for res in r["results"]:
            statements.setdefault(res["component"], {}).setdefault(res["id"], res["statement"])
    titles = {c.name: c.title for c in spec.COMPONENTS}
    order = [c.name for c in spec.COMPONENTS] + [c for c in statements if c not in titles]
    for component in order:
        if component not in statements:
            continue
        lines.append(f"| **{titles.get(component, component)}** |" + " |" * len(names))
        for invariant_id in statements[component]:
            cells = [status_badge(status[n].get(invariant_id, "")) if n in done else status_badge("") for n in names]
            lines.append(f"| {_breakable_id(invariant_id)} | " + " | ".join(cells) + " |")
    summary = []
    for n in names:
        r = reports[n]
        if isinstance(r, dict):
            counts: dict[str, int] = {}
            for res in r["results"]:
                counts[res["status"]] = counts.get(res["status"], 0) + 1
            seconds = sum(res["seconds"] for res in r["results"])
            shards = runs.SHARDS.get(n, 1)
            parallel = f", spread over {shards} processes running at the same time" if shards > 1 else ""
            summary.append(
                f"* `{n}` (`{r['backend_class']}`): "
                + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                + f"; the per-check times add up to {seconds:.1f} s (CPU-bound work, compiling included{parallel}; "
                "not the wall time of the build)."
            )
        else:
            summary.append(f"* `{n}`: could not be checked here — {r.splitlines()[0]}")
    first = next(iter(done.values()))
    legend = (
        ", ".join(f"{status_badge(status_name)} {status_name}" for status_name in STATUS_WORD) + f", {status_badge('')} not run"
    )
    command = f'conformance.run("NAME", dtypes=("{runs.DTYPE}",), profile="{runs.PROFILE}", seed={runs.SEED})'
    return (
        f"Each installed built-in backend, checked while these docs were built with `{command}` "
        f"(profile `{first['profile']}`, dtype {', '.join(first['dtypes'])}, seed {first['seed']}):\n\n"
        + "\n".join(summary)
        + f"\n\nLegend: {legend}.\n\n"
        + '<div class="tspec-matrix" markdown>\n\n'
        + "\n".join(lines)
        + "\n\n</div>"
    )


@generator
def tolerances_table(ctx: Context) -> str:
    """The one tolerance table of spec/tolerances.py."""
    from transformer_spec.spec.tolerances import EPSILON, TOLERANCES

    kinds = list(dict.fromkeys(kind for _, kind in TOLERANCES))
    dtypes = list(dict.fromkeys(dtype for dtype, _ in TOLERANCES))
    lines = [
        "| dtype | machine epsilon | " + " | ".join(f"{k}: rtol, atol" for k in kinds) + " |",
        "|---|---:|" + "---:|" * len(kinds),
    ]
    for dtype in dtypes:
        cells = [
            f"{TOLERANCES[(dtype, k)].rtol:g}, {TOLERANCES[(dtype, k)].atol:g}" if (dtype, k) in TOLERANCES else "–"
            for k in kinds
        ]
        lines.append(f"| {dtype} | {EPSILON.get(dtype, float('nan')):.3g} | " + " | ".join(cells) + " |")
    extra = (
        (
            f" The `gradient` row bounds the comparison with finite differences described on "
            f"[Gradients]({ctx.link('components/gradients.md')})."
        )
        if "gradient" in kinds
        else ""
    )
    return (
        "A value passes when $|\\text{got} - \\text{expected}| \\le \\text{atol} + \\text{rtol}\\,|\\text{expected}|$ "
        "elementwise, with the expected value computed in float64 (`transformer_spec.spec.tolerances.TOLERANCES`, the only tolerances "
        f"the suite uses).{extra}\n\n" + "\n".join(lines)
    )


@generator
def conformance_report_excerpt(ctx: Context) -> str:
    from . import conformance_runs as runs

    report = runs.report("numpy")
    excerpt = dict(report)
    excerpt["results"] = report["results"][:2]
    text = json.dumps(excerpt, indent=2)
    return (
        f"The start of the numpy report from this build ({len(report['results'])} results in all; "
        "the list is cut after two):\n\n```json\n" + text + "\n```"
    )


@generator
def report_fields(ctx: Context) -> str:
    """The fields of a report and of one result, read from the dataclasses the runner writes."""
    from dataclasses import fields

    from transformer_spec.conformance.runner import Report, Result

    def rows(cls) -> str:
        source = inspect.getsource(cls)
        out = []
        for f in fields(cls):
            comment = ""
            for line in source.splitlines():
                stripped = line.strip()
                if stripped.startswith(f"{f.name}:") and "#" in stripped:
                    comment = stripped.split("#", 1)[1].strip()
            type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            out.append(f"| `{f.name}` | `{_cell(type_name)}` | {_cell(comment)} |")
        return "\n".join(out)

    return (
        "A report (`transformer_spec.conformance.runner.Report`):\n\n| field | type | meaning |\n|---|---|---|\n"
        + rows(Report)
        + "\n\nEach entry of `results` (`transformer_spec.conformance.runner.Result`):\n\n| field | type | meaning |\n|---|---|---|\n"
        + rows(Result)
    )


# ---------------------------------------------------------------------------- the application


@generator
def cli_options(ctx: Context, command: str) -> str:
    """The options of ``tspec COMMAND``, read from its argparse parser."""
    import argparse

    from transformer_spec.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if command not in subparsers.choices:
        return _not_yet(f"tspec {command}")
    lines = ["| argument | meaning |", "|---|---|"]
    for action in subparsers.choices[command]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        names = ", ".join(action.option_strings) or action.dest
        if action.metavar and action.option_strings:
            names += f" {action.metavar}"
        elif action.choices and action.option_strings:
            names += " {" + ",".join(map(str, action.choices)) + "}"
        helptext = (action.help or "").replace("%%", "%")
        lines.append(f"| `{_cell(names)}` | {_cell(helptext)} |")
    return f"Every argument of `tspec {command}`, read from its parser:\n\n" + "\n".join(lines)


@generator
def backend_agreement(ctx: Context, prompt: str, tokens: str = "40", seed: str = "0") -> str:
    """Generate with the default model on every installed built-in backend and say whether the tokens agree."""
    from transformer_spec.backends import BUILTIN, available_backends

    if not _module_exists("transformer_spec.api"):
        return _not_yet("transformer_spec.api")
    from transformer_spec.api import load_model

    installed = [name for name in BUILTIN if name in available_backends()]
    runs = {
        name: load_model(backend=name).generate(prompt, max_new_tokens=int(tokens), seed=int(seed)).token_ids
        for name in installed
    }
    reference = runs[installed[0]]
    lines = ["| backend | first token ids | identical to `numpy`? |", "|---|---|---|"]
    for name, ids in runs.items():
        if ids == reference:
            verdict = "yes, all of them"
        else:
            first = next((i for i, (a, b) in enumerate(zip(ids, reference)) if a != b), min(len(ids), len(reference)))
            verdict = f"**no**: from token {first + 1} on"
        lines.append(f"| `{name}` | {', '.join(map(str, ids[:10]))}, ... | {verdict} |")
    agree = all(ids == reference for ids in runs.values())
    summary = (
        "in this build they agree."
        if agree
        else "**in this build they do not all agree** (the table shows where they part); it is recomputed on every build."
    )
    return (
        f'`load_model(backend=...).generate("{prompt}", max_new_tokens={tokens}, seed={seed})` on every '
        f"installed backend: {summary}\n\n" + "\n".join(lines)
    )


from . import walkthroughs  # noqa: E402,F401  (its generators register themselves in GENERATORS)
