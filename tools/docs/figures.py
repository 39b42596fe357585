"""Every figure on the site, drawn at build time with matplotlib from the real code.

Each function returns a matplotlib figure, or ``None`` when what it shows does
not exist yet (the default model before it ships); the page then says so.
Figures are saved as ``figures/<name>.svg`` in the site: vector graphics with
their text kept as text, so they stay sharp at any zoom and on a phone. Sizes
are chosen for the text column (about 7 inches of figure at 100 %), with
fonts of 10 pt and more.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import examples as ex
from .default_model import load as load_default_model


@dataclass(frozen=True)
class Figure:
    name: str
    draw: Callable[[], object | None]
    alt: str  # what the figure shows, for readers who cannot see it
    missing: str = ""  # shown instead when draw() returns None


FIGURES: dict[str, Figure] = {}
DRAWN: dict[str, str] = {}  # figure name → its path in the site, filled by the build for the figures it drew


def figure(name: str, alt: str, missing: str = ""):
    def register(draw):
        FIGURES[name] = Figure(name, draw, alt, missing)
        return draw

    return register


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "font.size": 11,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "legend.fontsize": 10,
            "svg.fonttype": "none",  # text stays text: sharp, selectable, and a tenth of the size of outlined glyphs
            "svg.hashsalt": "tspec",  # stable element ids, so an unchanged figure is byte-identical
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.max_open_warning": 0,
        }
    )
    return plt


def render_svg(name: str) -> bytes | None:
    fig = FIGURES[name].draw()
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    _plt().close(fig)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- softmax


@figure(
    "softmax_temperatures",
    "Bar charts of the softmax of the same four scores at temperatures 0.5, 1 and 2: "
    "low temperature concentrates the probability on the top word, high temperature spreads it out.",
)
def softmax_temperatures():
    plt = _plt()
    temps = ex.SOFTMAX_TEMPERATURES
    fig, axes = plt.subplots(1, len(temps), figsize=(3.2 * len(temps), 2.8), sharey=True)
    for ax, t in zip(axes, temps):
        p = ex.softmax_at(t)
        bars = ax.bar(ex.SOFTMAX_WORDS, p, color="#3f51b5")
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in p], fontsize=8)
        ax.set_title(f"temperature {t:g}")
        ax.set_ylim(0, 1.08)
    axes[0].set_ylabel(f'P(next word | "{ex.SOFTMAX_CONTEXT}")')
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- positions


@figure(
    "positional_heatmap",
    "Heat map of the sinusoidal position table for 64 positions and 64 dimensions: "
    "the left columns oscillate quickly down the positions, the right columns barely change.",
)
def positional_heatmap():
    plt = _plt()
    backend = ex.numpy_backend()
    table = backend.to_numpy(backend.sinusoidal_encoding(64, 64, dtype="float64"))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    image = ax.imshow(table, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xlabel("dimension (even: sin, odd: cos)")
    ax.set_ylabel("position p")
    fig.colorbar(image, ax=ax, label="PE[p, dimension]")
    return fig


@figure(
    "positional_arrows",
    "A grid of arrows: each row is one (sin, cos) pair of the position table, each column a "
    "position. The arrows of the first pair spin quickly; each later pair turns more slowly.",
)
def positional_arrows():
    plt = _plt()
    backend = ex.numpy_backend()
    dim, positions, pairs = 64, 12, (0, 4, 8, 12, 16)
    table = backend.to_numpy(backend.sinusoidal_encoding(positions, dim, dtype="float64"))
    fig, ax = plt.subplots(figsize=(8, 0.75 * len(pairs) + 0.8))
    radius = 0.42
    for row, i in enumerate(pairs):
        sin, cos = table[:, 2 * i], table[:, 2 * i + 1]
        for p in range(positions):
            ax.add_patch(plt.Circle((p, -row), radius, fill=False, color="#dddddd", lw=0.8))
        # the pair (sin, cos) is the point (cos θ, sin θ) of a unit arrow at angle θ = p / base^(2i/d)
        ax.quiver(
            np.arange(positions),
            np.full(positions, -row),
            cos,
            sin,
            angles="xy",
            scale_units="xy",
            scale=1 / radius,
            width=0.005,
            color="#3f51b5",
        )
    ax.set_yticks([-row for row in range(len(pairs))], [f"pair {i}" for i in pairs])
    ax.set_xticks(range(positions))
    ax.set_xlabel("position p")
    ax.set_xlim(-0.7, positions - 0.3)
    ax.set_ylim(-len(pairs) + 0.4, 0.6)
    ax.set_aspect("equal")
    return fig


# ---------------------------------------------------------------------------- attention


@figure(
    "attention_toy",
    "Two causal attention maps of the toy sentence 'the bear ate the honey because it was ...'. "
    "Ending in 'hungry', the last row puts almost all its weight on 'bear'; ending in 'delicious', on 'honey'.",
)
def attention_toy():
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6), layout="constrained")
    for ax, which in zip(axes, ex.ATTENTION_SENTENCES):
        words, weights = ex.attention_toy(which)
        image = ax.imshow(weights, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(words)), words, rotation=60, ha="right")
        ax.set_yticks(range(len(words)), words)
        ax.set_xlabel("key (the word looked at)")
        ax.set_title(f"... it was {which}")
        for (r, c), w in np.ndenumerate(weights):
            if w >= 0.095:
                ax.text(c, r, f"{w:.1f}", ha="center", va="center", fontsize=9, color="white" if w > 0.5 else "black")
    axes[0].set_ylabel("query (the word looking)")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    return fig


@figure(
    "attention_default_model",
    "The attention weights of the four heads of the default model's first block on a real sentence, one heat map per "
    "head with a shared colour bar; each head's title names its pattern where one is clear (previous token, first "
    "token, itself) with the mean weight it puts there.",
    missing="This figure is drawn from the shipped default model "
    "(`transformer_spec.api.load_model` and `transformer_spec/assets/default_model/`), which does not exist in this build yet.",
)
def attention_default_model():
    from . import inspect_model

    model = inspect_model.shipped()
    if model is None:
        return None
    plt = _plt()
    f = inspect_model.forward(model, model.tokenizer.encode(ex.DEFAULT_MODEL_SENTENCE))
    weights = f.attention[0]
    words = [p.replace(" ", "\u2423") for p in f.pieces]
    H = weights.shape[0]
    columns = 2
    rows = math.ceil(H / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(9, 4.6 * rows), squeeze=False, layout="constrained")
    for h, ax in enumerate(axes.flat):
        if h >= H:
            ax.axis("off")
            continue
        image = ax.imshow(weights[h], cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        role = head_role(weights[h])
        ax.set_title(f"head 0.{h}" + (f": {role}" if role else ""), fontsize=11)
        ax.set_xticks(range(len(words)), words, rotation=90, fontsize=8)
        ax.set_yticks(range(len(words)), words, fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight (row: query, column: key)")
    return fig


# A head "does" something when it puts, on average over the queries that have a choice, more than this share of
# its weight on one kind of key.
ROLE_THRESHOLD = 0.4


def head_roles(weights: np.ndarray) -> dict[str, float]:
    """Mean weight on the previous token, the first token and itself, over the queries with at least four keys to
    choose from (the first queries have so few that any head puts much weight on each)."""
    L = weights.shape[-1]
    rows = np.arange(3, L)
    return {
        "previous token": float(weights[rows, rows - 1].mean()),
        "first token (a sink)": float(weights[rows, 0].mean()),
        "itself": float(weights[rows, rows].mean()),
    }


def head_role(weights: np.ndarray) -> str:
    """The name of the head's clearest pattern, with its mean weight, or "" when none passes ROLE_THRESHOLD."""
    role, share = max(head_roles(weights).items(), key=lambda kv: kv[1])
    return f"{role} ({share:.2f})" if share > ROLE_THRESHOLD else ""


@figure(
    "apple_context",
    "Two bar charts of the attention weights of 'apple' over the words before it and itself. In 'an orange and an "
    "apple' the bar of 'orange' is the tallest; in 'a phone and an apple', the bar of 'phone'. Each panel's title gives "
    "apple's attention output: fruit-ness and gadget-ness.",
)
def apple_context():
    from .walkthroughs import TOY_SENTENCES, toy_attention

    plt = _plt()
    fig, axes = plt.subplots(1, len(TOY_SENTENCES), figsize=(9, 3.4), sharey=True, layout="constrained")
    for ax, sentence in zip(axes, TOY_SENTENCES):
        t = toy_attention(sentence)
        last = len(t["words"]) - 1
        weights = t["weights"][last]
        related = int(np.argmax(weights))
        colours = ["#e91e63" if i == related else "#3f51b5" for i in range(len(weights))]
        labels = [f"{w}\n({i})" for i, w in enumerate(t["words"])]
        bars = ax.bar(labels, weights, color=colours)
        ax.bar_label(bars, labels=[f"{w:.2f}" for w in weights], fontsize=10)
        ax.set_ylim(0, 1)
        ax.set_title(f"\u201c{sentence}\u201d\napple's output: fruit {t['out'][last][0]:.2f}, gadget {t['out'][last][1]:.2f}")
    axes[0].set_ylabel("attention weight of 'apple'")
    return fig


@figure(
    "causal_cache",
    "Attention weights of 3 new queries over 8 keys with causal=True: a staircase aligned to the "
    "bottom right, so the last query sees every key and the first new query sees keys 0 to 5.",
)
def causal_cache():
    plt = _plt()
    backend = ex.numpy_backend()
    rng = np.random.Generator(np.random.PCG64(0))
    L, S, Dh = 3, 8, 4
    q = backend.asarray(rng.standard_normal((L, Dh)), "float64")
    k = backend.asarray(rng.standard_normal((S, Dh)), "float64")
    _, weights = backend.attention(q, k, k, causal=True)
    weights = backend.to_numpy(weights)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.imshow(weights, cmap="Blues", vmin=0, vmax=weights.max())
    for (r, c), w in np.ndenumerate(weights):
        ax.text(c, r, "0" if w == 0 else f"{w:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(S), [f"key {j}" + ("\n(cached)" if j < S - L else "\n(new)") for j in range(S)], fontsize=7)
    ax.set_yticks(range(L), [f"query {i}\n(position {i + S - L})" for i in range(L)], fontsize=7)
    return fig


# ---------------------------------------------------------------------------- feed-forward, norms, loss


@figure(
    "activations",
    "ReLU, exact GELU, tanh GELU and SiLU from -4 to 4: all near zero for negative inputs and "
    "close to the identity for large positive ones; GELU's two forms are indistinguishable at this scale.",
)
def activations():
    plt = _plt()
    backend = ex.numpy_backend()
    x = np.linspace(-4, 4, 401)
    xs = backend.asarray(x, "float64")
    curves = {
        "ReLU": backend.relu(xs),
        "GELU (exact, erf)": backend.gelu(xs, approximate=False),
        "GELU (tanh, GPT-2)": backend.gelu(xs, approximate=True),
        "SiLU": backend.silu(xs),
    }
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for (label, y), style in zip(curves.items(), ("-", "-", "--", ":")):
        ax.plot(x, backend.to_numpy(y), style, label=label)
    ax.axhline(0, color="#999999", lw=0.6)
    ax.set_xlabel("x")
    ax.legend(frameon=False)
    return fig


@figure("layer_norm", "Histograms of one 256-wide row before layer norm (mean 3, spread 5) and after (mean 0, variance 1).")
def layer_norm():
    plt = _plt()
    backend = ex.numpy_backend()
    rng = np.random.Generator(np.random.PCG64(1))
    row = 3 + 5 * rng.standard_normal(256)
    y = backend.to_numpy(backend.layer_norm(backend.asarray(row, "float64"), backend.asarray(np.ones(256), "float64")))
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), sharey=True)
    for ax, values, title in ((axes[0], row, "before"), (axes[1], y, "after layer_norm")):
        ax.hist(values, bins=30, color="#3f51b5")
        ax.set_title(f"{title}: mean {values.mean():.2f}, variance {values.var():.2f}")
    return fig


@figure(
    "loss_curve",
    "The loss -log p of the true next token against the probability p the model gave it: zero at "
    "p = 1, log V for a uniform guess, growing without bound as p goes to 0.",
)
def loss_curve():
    plt = _plt()
    V = 512
    p = np.linspace(0.001, 1, 500)
    uniform, log_v = ex.uniform_loss(V)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(p, -np.log(p), color="#3f51b5")
    ax.scatter([1 / V], [uniform], color="#e91e63", zorder=3)
    ax.annotate(f"uniform over V = {V}: loss {uniform:.3f} = log {V}", (1 / V, uniform), xytext=(0.1, uniform + 0.4))
    ax.set_xlabel("p = probability given to the true next token")
    ax.set_ylabel("loss = -log p")
    return fig


@figure(
    "gpt2_parameters",
    "A bar chart of where GPT-2 small's parameters live: token embeddings, position "
    "embeddings, attention, feed-forward and norms.",
)
def gpt2_parameters():
    plt = _plt()
    groups = ex.gpt2_parameter_groups()
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    bars = ax.barh(list(groups), [v / 1e6 for v in groups.values()], color="#3f51b5")
    ax.bar_label(bars, labels=[f"{v / 1e6:.1f} M" for v in groups.values()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("parameters (millions)")
    return fig


# ---------------------------------------------------------------------------- sampling


@figure(
    "sampling_cut",
    "Two bar charts of the 3-gram model's 20 most probable next words after 'the cat ate the'. "
    "Coloured bars are the words sample() ever returned over a fine grid of u: the top 5 with top_k=5, and the "
    "smallest prefix reaching half the mass with top_p=0.5.",
)
def sampling_cut():
    plt = _plt()
    vocabulary, p = ex.sampling_distribution()
    order = np.argsort(-p, kind="stable")[:20]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, options, title in (
        (axes[0], {"top_k": ex.SAMPLING_TOP_K}, f"top_k = {ex.SAMPLING_TOP_K}"),
        (axes[1], {"top_p": ex.SAMPLING_TOP_P}, f"top_p = {ex.SAMPLING_TOP_P}"),
    ):
        kept = ex.tokens_ever_sampled(**options)
        colours = ["#3f51b5" if i in kept else "#cccccc" for i in order]
        ax.bar([vocabulary[i] for i in order], p[order], color=colours)
        ax.set_title(f"{title}: {len(kept)} words can be sampled")
        ax.tick_params(axis="x", rotation=70, labelsize=8)
    axes[0].set_ylabel(f'P(next | "{ex.SAMPLING_CONTEXT}")')
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- before transformers


@figure(
    "word_vectors_pca",
    "A scatter plot of word vectors learned from co-occurrence counts, projected to 2-D: "
    "fruits, royals and castles, animals, feelings and toys form separate clusters.",
)
def word_vectors_pca():
    plt = _plt()
    vocabulary, vectors = ex.word_vectors()
    words = [w for w in ex.PCA_WORDS if w in vocabulary]
    points = ex.pca_2d(vectors[[vocabulary.index(w) for w in words]])
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    ax.scatter(points[:, 0], points[:, 1], color="#3f51b5")
    _label_clusters(ax, words, points)
    ax.set_xlabel("first principal direction")
    ax.set_ylabel("second principal direction")
    return fig


def _label_clusters(ax, words, points, radius: float = 0.1) -> None:
    """One label per group of nearly coinciding points, listing its words (one label per point would overlap)."""
    span = float(np.ptp(points, axis=0).max()) or 1.0
    groups: list[list[int]] = []
    for i, point in enumerate(points):
        for group in groups:
            if np.linalg.norm(points[group[0]] - point) < radius * span:
                group.append(i)
                break
        else:
            groups.append([i])
    for group in groups:
        x, y = points[group].mean(axis=0)
        ax.annotate(", ".join(words[i] for i in group), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)


@figure(
    "default_model_embeddings_pca",
    "A scatter plot of rows of the default model's token-embedding table, projected to 2-D.",
    missing="This figure is drawn from the shipped default model's embedding table "
    "(`transformer_spec.api.load_model`), which does not exist in this build yet.",
)
def default_model_embeddings_pca():
    model = load_default_model()
    if model is None:
        return None
    plt = _plt()
    table = model.params["wte"]
    labelled = []
    for word in ex.PCA_WORDS:
        ids = model.tokenizer.encode(" " + word)
        if len(ids) == 1:  # a word that is one token has one row to show
            labelled.append((word, ids[0]))
    if len(labelled) < 3:
        raise RuntimeError(
            "the default model's tokenizer splits almost every PCA word into several tokens; "
            "choose other words in tools/docs/examples.py PCA_WORDS"
        )
    points = ex.pca_2d(table[[i for _, i in labelled]])
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    ax.scatter(points[:, 0], points[:, 1], color="#3f51b5")
    _label_clusters(ax, [word for word, _ in labelled], points)
    ax.set_xlabel("first principal direction")
    ax.set_ylabel("second principal direction")
    return fig


@figure(
    "perceptron_scores",
    "Horizontal bars of the perceptron's learned word scores: words of happy sentences "
    "score positive, words of sad sentences negative, neutral words near zero.",
)
def perceptron_scores():
    plt = _plt()
    result = ex.perceptron()
    scores = sorted(result["model"].word_scores().items(), key=lambda kv: kv[1])
    shown = scores[:8] + scores[-8:]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.barh([w for w, _ in shown], [s for _, s in shown], color=["#e91e63" if s < 0 else "#3f51b5" for _, s in shown])
    ax.axvline(0, color="#999999", lw=0.6)
    ax.set_xlabel("learned score")
    return fig


# ---------------------------------------------------------------------------- the trained model, opened up


@figure(
    "bear_attention",
    "Two heat maps, one per sentence ('The bear ate the honey because it was hungry.' and '... delicious.'): "
    "one row per attention head of the shipped model (layer.head), one column per token; each row is the "
    "attention of the sentence's last word over the tokens before it.",
    missing="This figure is drawn from the shipped default model, which does not exist in this build yet.",
)
def bear_attention():
    from . import inspect_model
    from .walkthroughs import BEAR_SENTENCES, _word_tokens

    model = inspect_model.shipped()
    if model is None:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(BEAR_SENTENCES), 1, figsize=(8, 10.5), layout="constrained")
    for ax, sentence in zip(axes, BEAR_SENTENCES):
        f = inspect_model.forward(model, model.tokenizer.encode(sentence))
        last = _word_tokens(f.pieces, sentence.rstrip(".").split()[-1])[-1]
        rows = np.stack([weights[h, last, : last + 1] for weights in f.attention for h in range(weights.shape[0])])
        labels = [f"{layer}.{h}" for layer, weights in enumerate(f.attention) for h in range(weights.shape[0])]
        image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(last + 1), [p.replace(" ", "\u2423") for p in f.pieces[: last + 1]], rotation=60, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylabel("head (layer.head)")
        ax.set_title(f"\u201c{sentence}\u201d: attention of \u201c{f.pieces[last].strip()}\u201d")
        fig.colorbar(image, ax=ax, label="attention weight", shrink=0.9)
    return fig


@figure(
    "learning_curve",
    "Two line charts of held-out loss against training step (log scale), for pretraining and for fine-tuning of the "
    "shipped model, with the training loss; the pretraining panel also has horizontal lines for the n-gram baselines.",
    missing="This figure is drawn from the losses `scripts/build_default_model.py` records while it trains; the "
    "shipped model's results were written before it recorded them.",
)
def learning_curve():
    from .walkthroughs import learning_record, ngram_token_losses

    results = learning_record()
    if results is None:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ax, stage, title in ((axes[0], "pretrain", "pretraining"), (axes[1], "finetune", "fine-tuning")):
        records = [r for r in results["learning"][stage] if r["held_out_loss"] is not None]
        steps = [max(r["step"], 0.5) for r in records]  # step 0 drawn at 0.5 on the log axis
        ax.plot(steps, [r["held_out_loss"] for r in records], "o-", color="#3f51b5", label="held-out loss")
        trained = [(s, r["train_loss"]) for s, r in zip(steps, records) if r["train_loss"] is not None]
        if trained:
            ax.plot(*zip(*trained), "s--", color="#e91e63", label="training loss (last 10 steps)")
        if stage == "pretrain":
            for n, _, loss in ngram_token_losses(results):
                if n in (1, 2, 3):
                    ax.axhline(loss, color="#888888", lw=0.8, ls=":")
                    ax.annotate(f"{n}-gram", (steps[-1], loss), textcoords="offset points", xytext=(4, 2), fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("training step (log scale; step 0 at 0.5)")
        ax.set_ylabel("loss (nats per token)")
        ax.set_title(title)
        ax.legend(frameon=False)
    return fig
