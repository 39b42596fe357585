"""Generators of the worked examples: generation step by step, attention with every matrix, the trained model's attention.

Every number comes from the shipped model or from the reference primitives
when the docs are built; each walk-through checks itself against the
project's own code (the tokens it picks are the ones ``generate`` picks, the
attention it spells out equals ``attention``'s), so a page cannot drift from
what the code does.
"""

from __future__ import annotations

import html
import math

import numpy as np

from . import examples as ex
from . import inspect_model
from .generators import Context, _not_yet, generator


def _piece(text: str) -> str:
    """A token's text for a table cell: visible spaces and newlines, HTML-escaped, in code."""
    shown = text.replace(" ", "␣").replace("\n", "\\n")
    return f"<code>{html.escape(shown)}</code>"


def _bar(p: float, chosen: bool = False) -> str:
    kind = " tspec-bar--chosen" if chosen else ""
    width = max(0.5, 100 * p)
    return f'<span class="tspec-bar-track"><span class="tspec-bar{kind}" style="width:{width:.1f}%"></span></span>'


# ---------------------------------------------------------------------------- generation, step by step


def generation_trace(prompt: str, steps: int, seed: int, temperature: float) -> list[dict]:
    """Each step of ``generate(prompt, seed, temperature)`` on the shipped model: the distribution, u and the choice.

    Follows ``transformer_spec.generate.generate_tokens``: one ``u = rng.random()`` per step from
    ``Generator(PCG64(seed))``, then the reference ``sample(logits, u, temperature)``.
    """
    model = inspect_model.shipped()
    backend = ex.numpy_backend()
    ids = model.tokenizer.encode(prompt)
    rng = np.random.Generator(np.random.PCG64(seed))
    trace = []
    for step in range(steps):
        logits = inspect_model.forward(model, ids).logits[-1]
        u = rng.random()
        token = backend.sample(backend.asarray(logits, "float64"), u, temperature, None, None)
        scaled = logits / temperature if temperature > 0 else logits
        p = backend.to_numpy(backend.softmax(backend.asarray(scaled, "float64")))
        order = np.argsort(-p, kind="stable")
        cumulative = np.cumsum(p)
        trace.append(
            dict(
                step=step + 1,
                context=model.tokenizer.decode(ids),
                top=[(int(i), model.tokenizer.decode([int(i)]), float(p[i])) for i in order[:5]],
                u=u,
                token=int(token),
                piece=model.tokenizer.decode([int(token)]),
                p=float(p[token]),
                rank=int(np.nonzero(order == token)[0][0]) + 1,
                interval=(float(cumulative[token] - p[token]), float(cumulative[token])),
            )
        )
        ids = ids + [int(token)]
        if token == model.tokenizer.eos_id:
            break
    real = model.generate(prompt, max_new_tokens=steps, temperature=temperature, seed=seed).token_ids
    mine = tuple(step["token"] for step in trace)
    if tuple(real) != mine:
        raise RuntimeError(
            f"the step-by-step walk-through picked {mine} but model.generate({prompt!r}, seed={seed}, "
            f"temperature={temperature}) picked {tuple(real)}: the walk-through no longer follows generate_tokens"
        )
    return trace


@generator
def generation_steps(ctx: Context, prompt: str, steps: str = "6", seed: str = "0", temperature: str = "1") -> str:
    """Per step: the top-5 next tokens with bars, u, the chosen token, and the text it is appended to."""
    if inspect_model.shipped() is None:
        return _not_yet("transformer_spec/assets/default_model/")
    T = float(temperature)
    trace = generation_trace(prompt, int(steps), int(seed), T)
    greedy = T == 0
    out = []
    for s in trace:
        rows = ["| # | next token | probability |", "|---:|---|---|"]
        for rank, (token_id, piece, p) in enumerate(s["top"], 1):
            chosen = token_id == s["token"]
            token = f"**{_piece(piece)} ← chosen**" if chosen else _piece(piece)
            rows.append(f"| {rank} | {token} | {_bar(p, chosen)} {p:.3f} |")
        if s["rank"] > 5:
            rows.append(f"| {s['rank']} | **{_piece(s['piece'])} ← chosen** | {_bar(s['p'], True)} {s['p']:.3f} |")
        if greedy:
            how = (
                f"Temperature 0: no randomness is used (u = {s['u']:.4f} was drawn but `sample` ignores it); "
                f"the most probable token wins: {_piece(s['piece'])}."
            )
        else:
            low, high = s["interval"]
            how = (
                f"u = **{s['u']:.4f}**. Laid end to end in vocabulary order, the probabilities cover [0, 1); "
                f"{_piece(s['piece'])} covers [{low:.4f}, {high:.4f}), which contains u, so it is chosen "
                f"(it is number {s['rank']} by probability)."
            )
        out.append(
            f"**Step {s['step']}.** The text so far: {_piece(s['context'])}\n\n"
            + "\n".join(rows)
            + f"\n\n{how} Append it: {_piece(s['context'] + s['piece'])}"
        )
    final = trace[-1]["context"] + trace[-1]["piece"]
    mode = "greedy decoding (temperature 0)" if greedy else f"sampling at temperature {T:g}, seed {seed}"
    return (
        f"{len(trace)} steps of {mode} on the shipped model, computed when these docs were built. "
        f"The tokens are checked to be the ones `load_model().generate({prompt!r}, max_new_tokens={steps}, "
        f"temperature={T:g}, seed={seed})` picks.\n\n" + "\n\n".join(out) + f"\n\nAfter {len(trace)} steps: {_piece(final)}"
    )


# ---------------------------------------------------------------------------- attention, with numbers

# Word features: (fruit, gadget, ambiguous, function word). "apple" is the ambiguous word: its own
# vector says neither fruit nor gadget; what it means comes from the words around it.
TOY_WORDS = {
    "an": (0.0, 0.0, 0.0, 1.0),
    "a": (0.0, 0.0, 0.0, 1.0),
    "and": (0.0, 0.0, 0.0, 1.0),
    "orange": (1.0, 0.0, 0.0, 0.0),
    "phone": (0.0, 1.0, 0.0, 0.0),
    "apple": (0.0, 0.0, 1.0, 0.0),
}
TOY_SENTENCES = ("an orange and an apple", "a phone and an apple")
TOY_FEATURES = ("fruit", "gadget", "ambiguous", "function")
# W_Q: an ambiguous word asks "is there a fruit or a gadget here?"; other words ask nothing (zero query).
TOY_WQ = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [4, 4, 0, 0], [0, 0, 0, 0]], dtype=np.float64)
# W_K: a word advertises its fruit-ness and gadget-ness; function words and "apple" itself advertise nothing.
TOY_WK = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float64)
# W_V: what a word passes on when attended to: its fruit-ness and gadget-ness (and the rest unchanged).
TOY_WV = np.eye(4)


def toy_attention(sentence: str) -> dict:
    """Every intermediate of causal self-attention on the toy sentence, checked against the reference ``attention``."""
    backend = ex.numpy_backend()
    words = sentence.split()
    x = np.array([TOY_WORDS[w] for w in words])  # (L, 4)
    as64 = lambda a: backend.asarray(a, "float64")  # noqa: E731
    q = backend.to_numpy(backend.linear(as64(x), as64(TOY_WQ)))  # (L, 4)
    k = backend.to_numpy(backend.linear(as64(x), as64(TOY_WK)))
    v = backend.to_numpy(backend.linear(as64(x), as64(TOY_WV)))
    scores = q @ k.T  # (L, L)
    scaled = scores / math.sqrt(x.shape[1])
    L = len(words)
    allowed = np.tril(np.ones((L, L), dtype=bool))
    masked = np.where(allowed, scaled, -np.inf)
    weights = backend.to_numpy(backend.softmax(as64(masked), axis=-1))
    out = weights @ v
    ref_out, ref_weights = backend.attention(as64(q), as64(k), as64(v), causal=True)
    if not (np.allclose(backend.to_numpy(ref_weights), weights) and np.allclose(backend.to_numpy(ref_out), out)):
        raise RuntimeError("the attention spelled out step by step differs from the reference attention(...)")
    return dict(words=words, x=x, q=q, k=k, v=v, scores=scores, scaled=scaled, masked=masked, weights=weights, out=out)


def _matrix(m: np.ndarray, rows: list[str], columns: list[str], digits: int = 2, highlight_row: int | None = None) -> str:
    def cell(value: float) -> str:
        if value == -np.inf:
            return "−∞"
        text = f"{value:.{digits}f}"
        return "0" if float(text) == 0 else text.replace("-", "−")

    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for i, (name, row) in enumerate(zip(rows, m)):
        cells = [cell(v) for v in row]
        if i == highlight_row:
            cells = [f"**{c}**" for c in cells]
            name = f"**{name}**"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return '<div class="tspec-compact" markdown>\n\n' + "\n".join(lines) + "\n\n</div>"


@generator
def attention_walkthrough(ctx: Context, sentence: str = TOY_SENTENCES[0]) -> str:
    """The toy sentence through causal self-attention, every matrix printed."""
    t = toy_attention(sentence)
    words, L = t["words"], len(t["words"])
    last = L - 1
    rows = [f"{i}: {w}" for i, w in enumerate(words)]
    feats = list(TOY_FEATURES)
    d = len(feats)
    wq_rows = [f"{f} →" for f in feats]
    best = int(np.argmax(t["weights"][last][:last])) if last else 0
    parts = [
        f"**1. The input x** ({L} words × {d} features; one row per word, as the embedding table would give it):\n\n"
        + _matrix(t["x"], rows, feats, 0),
        "**2. The three weight matrices** (in a trained model they are learned; here they are chosen so the "
        "numbers can be read). Row *f* of W says what input feature *f* contributes to each output column.\n\n"
        "W_Q (what a word looks for):\n\n" + _matrix(TOY_WQ, wq_rows, ["q1", "q2", "q3", "q4"], 0) + "\n\n"
        "W_K (what a word offers to be found by):\n\n" + _matrix(TOY_WK, wq_rows, ["k1", "k2", "k3", "k4"], 0) + "\n\n"
        "W_V (what a word passes on when it is attended to):\n\n" + _matrix(TOY_WV, wq_rows, feats, 0),
        "**3. Queries, keys and values:** Q = x·W_Q, K = x·W_K, V = x·W_V (`linear`).\n\n"
        "Q:\n\n" + _matrix(t["q"], rows, ["q1", "q2", "q3", "q4"], 0) + "\n\n"
        "K:\n\n" + _matrix(t["k"], rows, ["k1", "k2", "k3", "k4"], 0) + "\n\n"
        "V:\n\n" + _matrix(t["v"], rows, feats, 0),
        "**4. Scores q·k:** row *i*, column *j* is how well word *i*'s query matches word *j*'s key (Q·Kᵀ).\n\n"
        + _matrix(t["scores"], rows, [str(j) for j in range(L)], 2, last),
        f"**5. Divide by √d = √{d} = {math.sqrt(d):g}**, so that the scores do not grow with the width:\n\n"
        + _matrix(t["scaled"], rows, [str(j) for j in range(L)], 2, last),
        "**6. The causal mask:** a word may not look at words after it; their scores become −∞.\n\n"
        + _matrix(t["masked"], rows, [str(j) for j in range(L)], 2, last),
        "**7. Softmax along each row** (`softmax`): the weights of a row are positive and sum to 1; −∞ becomes 0.\n\n"
        + _matrix(t["weights"], rows, [str(j) for j in range(L)], 3, last),
        "**8. The weighted sum of the values:** output row *i* = Σ_j weight[i, j] · V[j] (weights · V).\n\n"
        + _matrix(t["out"], rows, feats, 3, last),
        f"Read the last row: *{words[last]}* puts weight {t['weights'][last][best]:.3f} on *{words[best]}* "
        f"(word {best}) and {1 - t['weights'][last][best]:.3f} on all the others together, so its output is "
        f"mostly *{words[best]}*'s value: fruit-ness {t['out'][last][0]:.2f}, gadget-ness {t['out'][last][1]:.2f}. "
        "The words that ask for nothing (a zero query) give every word they can see the same weight: "
        "they average, they do not select. The same numbers come out of the reference "
        "`attention(q, k, v, causal=True)`; the build checks that they do.",
    ]
    return "\n\n".join(parts)


@generator
def attention_toy_summary(ctx: Context) -> str:
    """apple's weights and output in each toy sentence, side by side."""
    lines = ["| sentence | apple's weights (word: weight) | apple's output: fruit-ness | gadget-ness |", "|---|---|---:|---:|"]
    for sentence in TOY_SENTENCES:
        t = toy_attention(sentence)
        last = len(t["words"]) - 1
        weights = ", ".join(f"{w}: {p:.2f}" for w, p in zip(t["words"], t["weights"][last]))
        lines.append(f"| {sentence} | {weights} | {t['out'][last][0]:.2f} | {t['out'][last][1]:.2f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the trained model's attention

BEAR_SENTENCES = (
    "The bear ate the honey because it was hungry.",
    "The bear ate the honey because it was delicious.",
)


def _word_tokens(pieces: list[str], word: str) -> list[int]:
    """Positions of the tokens that spell ``word`` (its first occurrence)."""
    text, starts = "", []
    for piece in pieces:
        starts.append(len(text))
        text += piece
    at = text.find(" " + word) + 1 if text.find(" " + word) >= 0 else text.find(word)
    end = at + len(word)
    return [i for i, s in enumerate(starts) if at <= s < end or (s < at < s + len(pieces[i]))]


def bear_attention() -> list[dict]:
    """For each sentence, layer and head: the weight the last word and "it" put on "bear" and on "honey"."""
    model = inspect_model.shipped()
    results = []
    for sentence in BEAR_SENTENCES:
        ids = model.tokenizer.encode(sentence)
        f = inspect_model.forward(model, ids)
        final_word = sentence.rstrip(".").split()[-1]
        bear, honey = _word_tokens(f.pieces, "bear"), _word_tokens(f.pieces, "honey")
        it, last = _word_tokens(f.pieces, "it")[-1], _word_tokens(f.pieces, final_word)[-1]
        for layer, weights in enumerate(f.attention):
            for head in range(weights.shape[0]):
                row = weights[head]
                results.append(
                    dict(
                        sentence=sentence,
                        final=final_word,
                        pieces=f.pieces,
                        layer=layer,
                        head=head,
                        last_bear=float(row[last, bear].sum()),
                        last_honey=float(row[last, honey].sum()),
                        it_bear=float(row[it, bear].sum()),
                        it_honey=float(row[it, honey].sum()),
                        last_top=f.pieces[int(np.argmax(row[last]))],
                        last_top_weight=float(row[last].max()),
                    )
                )
    return results


@generator
def bear_attention_report(ctx: Context) -> str:
    """The trained model's attention from "it" and from the last word to "bear" and "honey", every head, and what that shows."""
    if inspect_model.shipped() is None:
        return _not_yet("transformer_spec/assets/default_model/")
    results = bear_attention()
    by_sentence: dict[str, list[dict]] = {}
    for r in results:
        by_sentence.setdefault(r["sentence"], []).append(r)
    parts = []
    for sentence, rows in by_sentence.items():
        pieces = " ".join(_piece(p) for p in rows[0]["pieces"])
        final = rows[0]["final"]
        table = [
            f"| layer.head | *{final}* → bear | *{final}* → honey | *it* → bear | *it* → honey | *{final}*'s strongest key |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in rows:
            table.append(
                f"| {r['layer']}.{r['head']} | {r['last_bear']:.3f} | {r['last_honey']:.3f} | {r['it_bear']:.3f} | "
                f"{r['it_honey']:.3f} | {_piece(r['last_top'])} ({r['last_top_weight']:.2f}) |"
            )
        parts.append(f"**{sentence}** — tokens: {pieces}\n\n" + "\n".join(table))
    # The honest summary: does any head move its weight from bear to honey when the last word changes?
    hungry, delicious = (by_sentence[s] for s in BEAR_SENTENCES)
    shifts = []
    for a, b in zip(hungry, delicious):
        prefers_bear = a["last_bear"] > a["last_honey"]
        prefers_honey = b["last_honey"] > b["last_bear"]
        shifts.append((a["layer"], a["head"], prefers_bear and prefers_honey, a["last_bear"] - b["last_bear"]))
    resolving = [f"{layer}.{head}" for layer, head, ok, _ in shifts if ok]
    heads = len(shifts)
    mean_on_nouns = np.mean([r["last_bear"] + r["last_honey"] for r in results])
    top_pieces: dict[str, int] = {}
    for r in results:
        top_pieces[r["last_top"]] = top_pieces.get(r["last_top"], 0) + 1
    common, count = max(top_pieces.items(), key=lambda kv: kv[1])
    if resolving:
        verdict = (
            f"In {len(resolving)} of the {heads} heads ({', '.join(resolving)}) the last word weighs *bear* more than "
            "*honey* after *hungry*, and *honey* more than *bear* after *delicious* — the pattern the toy example "
            "was built to have. Whether that is resolution of *it* or a by-product of position is not something one "
            "pair of sentences can tell."
        )
    else:
        verdict = (
            f"No head of the {heads} shifts its weight from *bear* (after *hungry*) to *honey* (after *delicious*): "
            "this small model has not learned the resolution the toy example was built to show."
        )
    summary = (
        f"What the numbers say, computed from the table when these docs were built: {verdict} "
        f"On average the last word puts {mean_on_nouns:.2f} of its attention on the two nouns together; "
        f"the key the last word weights highest is most often {_piece(common)} ({count} of {2 * heads} rows). "
        "One pair of sentences is evidence about these two sentences only; the point is how to read a real "
        "attention map, not a claim about what the model understands."
    )
    return "\n\n".join(parts) + "\n\n" + summary


# ---------------------------------------------------------------------------- the shipped model: held-out countries


@generator
def held_out_country(ctx: Context, country: str = "Nigeria") -> str:
    """Whether ``country`` is held out of the shipped model's fine-tuning, what the model answers, and the measured rate."""
    import json

    from transformer_spec.data.countries import COUNTRIES

    from .default_model import ASSETS
    from .paths import ROOT

    model = inspect_model.shipped()
    if model is None:
        return _not_yet("transformer_spec/assets/default_model/")
    config = json.loads((ASSETS / "config.json").read_text())
    held_out = config.get("held_out_countries", [])
    capital = next(c.capital for c in COUNTRIES if c.name == country)
    answer = model.generate(
        config["prompt_template"].format(prompt=f"What is the capital of {country}?"), max_new_tokens=24, temperature=0
    ).text.strip()
    named = capital.lower() in answer.lower()
    where = "is one" if country in held_out else "is **not** one"
    results_path = ROOT / config.get("results", "docs/results/default_model.json")
    rate = ""
    if results_path.exists():
        qa = json.loads(results_path.read_text())["qa"]
        held, trained = qa["fine-tuned, prompt format"]["all"], qa["fine-tuned, training countries"]["all"]
        base = qa["base, bare question"]["all"]
        rate = (
            f" Measured over all {held['examples']} questions about held-out countries, the fine-tuned model names the "
            f"capital in {100 * held['names_capital']:.1f}% of them ({100 * trained['names_capital']:.1f}% for the "
            f"countries it was fine-tuned on; the base model, asked the bare question: {100 * base['names_capital']:.1f}%): "
            f"see [the default model's measured results]({ctx.link('results/default_model.md')})."
        )
    return (
        f"{country} {where} of the {len(held_out)} countries held out of the shipped model's fine-tuning "
        f"(`held_out_countries` in `transformer_spec/assets/default_model/config.json`): no fine-tuning example "
        f"mentions it, so the model can only answer from what pretraining taught it about {country} and from the habit "
        f"of answering that fine-tuning taught it on other countries. Asked when these docs were built, it answered "
        f"“{answer}”, which {'names' if named else 'does **not** name'} the capital, {capital}.{rate}"
    )


# ---------------------------------------------------------------------------- learning as it happens


def learning_record() -> dict | None:
    """The default-model build's results (docs/results/default_model.json), if it recorded its learning."""
    import json

    from .paths import ROOT

    path = ROOT / "docs" / "results" / "default_model.json"
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    return results if results.get("learning", {}).get("pretrain") else None


def ngram_token_losses(results: dict) -> list[tuple[int, float, float]]:
    """(n, per-word perplexity, the same in nats per token on the held-out text) for each n-gram baseline.

    An n-gram model predicts words and the transformer tokens. Over the same held-out text both give a total
    negative log-likelihood; the base model's word and token perplexities there give the text's tokens per word
    (log word-perplexity / log token-perplexity), which turns an n-gram's per-word perplexity into nats per token.
    """
    base = results["perplexity"]["base"]
    tokens_per_word = math.log(base["word_perplexity"]) / math.log(base["token_perplexity"])
    return [(row["n"], row["word_perplexity"], math.log(row["word_perplexity"]) / tokens_per_word) for row in results["ngram"]]


def _sample_cell(text: str) -> str:
    text = text.strip()
    return html.escape(text).replace("|", "\\|").replace("\n", " ↵ ") if text else "*(nothing: end-of-text first)*"


@generator
def learning_tables(ctx: Context, stage: str = "pretrain") -> str:
    """The recorded steps of one stage of the default-model build: loss and the greedy samples."""
    results = learning_record()
    if results is None:
        return (
            '!!! note "Appears once the default model is rebuilt"\n    `scripts/build_default_model.py` records '
            "samples and losses while it trains; the shipped model's results in `docs/results/default_model.json` "
            "were written before it did. The next build of the default model fills in this section."
        )
    records = results["learning"][stage]
    prompts = [s["prompt"] for s in records[0]["samples"]]
    header = "| step | held-out loss | " + " | ".join(f"“{p}” →" for p in prompts) + " |"
    lines = [header, "|---:|---:|" + "---|" * len(prompts)]
    for r in records:
        loss = f"{r['held_out_loss']:.3f}" if r["held_out_loss"] is not None else "–"
        lines.append(f"| {r['step']} | {loss} | " + " | ".join(_sample_cell(s["text"]) for s in r["samples"]) + " |")
    n = results["learning"]["record_tokens"]
    return (
        f"Greedy continuations (temperature 0, at most {n} tokens) with the weights of each recorded step, and the "
        f"held-out loss at that step, as `{results['command']}` recorded them:\n\n" + "\n".join(lines)
    )


@generator
def learning_baselines(ctx: Context) -> str:
    """The n-gram baselines the loss curve is compared with, in both units."""
    results = learning_record()
    if results is None:
        return ""
    lines = ["| model | per-word perplexity | nats per token on the same text |", "|---|---:|---:|"]
    for n, word_ppl, token_loss in ngram_token_losses(results):
        lines.append(f"| {n}-gram (Witten-Bell) | {word_ppl:.3f} | {token_loss:.3f} |")
    base = results["perplexity"]["base"]
    lines.append(
        f"| transformer, end of pretraining | {base['word_perplexity']:.3f} | {math.log(base['token_perplexity']):.3f} |"
    )
    return "\n".join(lines)


@generator
def head_roles_table(ctx: Context) -> str:
    """Every head of the shipped model on the figure's sentence: its mean weight on the previous token, the first token and itself."""
    from .figures import ROLE_THRESHOLD, head_role, head_roles

    model = inspect_model.shipped()
    if model is None:
        return ""
    f = inspect_model.forward(model, model.tokenizer.encode(ex.DEFAULT_MODEL_SENTENCE))
    names = list(head_roles(f.attention[0][0]))
    lines = [
        "| head | " + " | ".join(f"mean weight on {n}" for n in names) + " | named |",
        "|---|" + "---:|" * len(names) + "---|",
    ]
    named = 0
    for layer, weights in enumerate(f.attention):
        for h in range(weights.shape[0]):
            roles = head_roles(weights[h])
            role = head_role(weights[h])
            named += bool(role)
            lines.append(
                f"| {layer}.{h} | " + " | ".join(f"{roles[n]:.2f}" for n in names) + f" | {role.split(' (')[0] or '–'} |"
            )
    total = sum(w.shape[0] for w in f.attention)
    return (
        f"Every head of the shipped model on the same sentence. A head is named when, averaged over the queries that "
        f"have at least four keys to choose from, it puts more than {ROLE_THRESHOLD} of its weight on one kind of key; "
        f"{named} of the {total} heads are, the others spread their weight in ways these three patterns do not "
        "describe.\n\n" + "\n".join(lines)
    )


# ---------------------------------------------------------------------------- the attention explorer (docs/assets/javascripts)


@generator
def attention_explorer(ctx: Context) -> str:
    """The data of the attention explorer widget: every head's weights on the bear/honey sentences, as JSON in the page."""
    import json

    model = inspect_model.shipped()
    if model is None:
        return ""
    sentences = []
    for sentence in BEAR_SENTENCES:
        f = inspect_model.forward(model, model.tokenizer.encode(sentence))
        sentences.append(
            {
                "text": sentence,
                "tokens": f.pieces,
                "heads": [f"{layer}.{h}" for layer, w in enumerate(f.attention) for h in range(w.shape[0])],
                # weights[head][query] = the query's row, up to and including itself (the rest is masked: 0)
                "weights": [
                    [[round(float(v), 3) for v in w[h, q, : q + 1]] for q in range(w.shape[1])]
                    for w in f.attention
                    for h in range(w.shape[0])
                ],
            }
        )
    data = html.escape(json.dumps({"sentences": sentences}, separators=(",", ":")), quote=True)
    return (
        f'<div class="tspec-attention-explorer" data-attention="{data}">\n'
        "<p><em>The explorer needs JavaScript; the same weights are in the figure and the table above.</em></p>\n</div>"
    )
