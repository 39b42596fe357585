r"""Generation: encode the prompt, then sample one token at a time with a KV cache.

The loop
--------
1. ``ids = tokenizer.encode(prompt)``.
2. **Prefill**: ``logits, cache = backend.model_forward(params, config, ids[None, :])``.
3. Draw ``u = rng.random()`` from ``numpy.random.Generator(PCG64(seed))`` on the
   host and pick ``token = backend.sample(logits[0, -1, ...], u, temperature, top_k, top_p)``.
   The randomness is one number per step, drawn on the host, and ``sample`` is a
   pure function of the logits and ``u``: the same seed gives the same tokens
   on every backend (up to logits that differ in the last float bits exactly
   at a sampling boundary). One ``u`` is drawn per step even when
   ``temperature = 0``, so the stream of ``u`` never depends on the options.
4. Stop after the end-of-text token (when ``stop_at_eos`` and the tokenizer has
   one) or after ``max_new_tokens`` tokens; otherwise **decode**: feed ONLY the
   new token with the cache, ``logits, cache = model_forward(params, config, [[token]], cache)``,
   and go to 3.

The context window
------------------
A model with context length ``C`` has positions ``0 .. C-1`` only.

* ``overflow="error"``: a prompt of more than ``C`` tokens is a
  :class:`GenerationError`. When the sequence fills the context, generation
  stops with ``stop_reason = "context_full"``.
* ``overflow="slide"``: whenever the next token would need position ``C``, the
  oldest tokens are dropped and the last ``C - 1`` tokens of the sequence
  (prompt and generated, the newest included) are prefilled again from
  position 0 with an empty cache; decoding then continues with that cache. A
  prompt of more than ``C`` tokens starts from its last ``C - 1`` (a model
  with ``C = 1`` keeps 1). So every token is predicted from the last ``C - 1``
  or ``C`` tokens; once the context is full this costs one prefill of ``C - 1``
  tokens every other step, since learned absolute positions cannot be shifted
  inside a cache. (nanoGPT instead runs a full forward on the last ``C`` tokens
  at every step.)

Batches
-------
:func:`generate_batch` continues several prompts at once: left padding, a
padding mask and per-row positions (:class:`~transformer_spec.backends.cache.PaddedKVCache`)
make every row compute what it would alone, and each row draws from its own
``PCG64(seed)``, so prompt i gets the tokens ``generate(prompt_i, seed=seed)``
gives (see :func:`generate_batch_tokens`).

Streaming
---------
``stream(piece)`` receives text as it is produced, through the tokenizer's
stream decoder, so a UTF-8 character split over several byte-level tokens is
printed once, whole. The decoder is first fed the prompt's ids (their text is
discarded) so the first piece is spaced correctly after the prompt. Special
tokens (end-of-text) are not shown. ``"".join(pieces) == result.text``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transformer_spec.backends import Backend, load_backend
from transformer_spec.backends.base import check_sampling_options
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, SpecError

from .checkpoint import Checkpoint
from .storage import as_backend_input, dtype_name

OVERFLOW_POLICIES = ("error", "slide")
DEFAULT_MAX_NEW_TOKENS = 64
STOP_REASONS = ("eos", "max_new_tokens", "context_full")


class GenerationError(SpecError):
    """A generation option or prompt is invalid (the message says which and what was expected)."""


@dataclass(frozen=True)
class GenerationResult:
    """What :func:`generate` produced, and how long it took."""

    prompt: str
    prompt_ids: tuple[int, ...]  # the prompt's token ids, as encoded (before any sliding)
    token_ids: tuple[int, ...]  # the new tokens, in order (an end-of-text token that stopped generation included)
    text: str  # the new text, as streamed: "".join(pieces); it follows the prompt directly
    stop_reason: str  # "eos", "max_new_tokens" or "context_full"
    prefill_seconds: float  # prompt forward and first token (time to first token)
    decode_seconds: float  # every later step: one-token forward (or re-prefill when sliding) and sampling
    backend: str  # the backend's name
    slides: int = 0  # how often the sliding window restarted the cache

    @property
    def decode_steps(self) -> int:
        """Forward passes after the prefill (one per new token after the first)."""
        return max(len(self.token_ids) - 1, 0)

    @property
    def decode_tokens_per_second(self) -> float:
        """Decoding speed: tokens after the first, per second of decoding (``nan`` when there were none)."""
        if self.decode_steps == 0 or self.decode_seconds <= 0:
            return float("nan")
        return self.decode_steps / self.decode_seconds

    @property
    def total_seconds(self) -> float:
        return self.prefill_seconds + self.decode_seconds

    @property
    def full_text(self) -> str:
        """The prompt followed by the new text."""
        return self.prompt + self.text


@dataclass(frozen=True)
class TokenGeneration:
    """The result of :func:`generate_tokens` (ids in, ids out; no tokenizer involved)."""

    token_ids: tuple[int, ...]
    stop_reason: str
    prefill_seconds: float
    decode_seconds: float
    slides: int


def generate(
    backend: Backend | str | None,
    model: Checkpoint | tuple[ModelConfig, Mapping[str, Any], Any],
    prompt: str,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    stop_at_eos: bool = True,
    overflow: str = "error",
    stream: Callable[[str], Any] | None = None,
    *,
    dtype: str | None = None,
) -> GenerationResult:
    """Continue ``prompt`` with up to ``max_new_tokens`` tokens (see the module docstring).

    ``backend``: a Backend, or a name for :func:`backends.load_backend` ("numpy",
    "torch", "jax", "module:attr"). ``model``: a :class:`Checkpoint`, or a tuple
    ``(config, params, tokenizer)`` whose params are NumPy arrays or already the
    backend's native arrays (then they are used as they are). ``dtype``: the
    float dtype to compute in (default: the params' own). ``temperature = 0`` is
    greedy decoding. ``stream``: called with each new piece of text.
    """
    backend = load_backend(backend)
    config, params, tokenizer = _unpack(model)
    check_generation_options(max_new_tokens, temperature, top_k, top_p, seed, stop_at_eos, overflow, stream)
    prompt_ids = encode_prompt(tokenizer, prompt)
    native = native_params(backend, params, dtype)
    if tokenizer.vocab_size > config.vocab_size:
        raise GenerationError(
            f"generate: the tokenizer has {tokenizer.vocab_size} ids but the model only vocab_size = {config.vocab_size}; "
            f"expected a tokenizer that belongs to this model"
        )

    decoder = tokenizer.stream_decoder(skip_special=True)
    for token_id in prompt_ids:  # gives the decoder its context (where a space goes); the text is the prompt's own
        decoder.push(token_id)
    pieces: list[str] = []

    def emit(token_id: int) -> None:
        piece = decoder.push(token_id)
        if piece:
            pieces.append(piece)
            if stream is not None:
                stream(piece)

    outcome = generate_tokens(
        backend,
        config,
        native,
        prompt_ids,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        eos_id=tokenizer.eos_id if stop_at_eos else None,
        overflow=overflow,
        on_token=emit,
    )
    tail = decoder.flush()
    if tail:
        pieces.append(tail)
        if stream is not None:
            stream(tail)
    return GenerationResult(
        prompt=prompt,
        prompt_ids=tuple(prompt_ids),
        token_ids=outcome.token_ids,
        text="".join(pieces),
        stop_reason=outcome.stop_reason,
        prefill_seconds=outcome.prefill_seconds,
        decode_seconds=outcome.decode_seconds,
        backend=backend.name,
        slides=outcome.slides,
    )


def generate_tokens(
    backend: Backend,
    config: ModelConfig,
    params: Mapping[str, Any],
    prompt_ids: Sequence[int],
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    eos_id: int | None = None,
    overflow: str = "error",
    on_token: Callable[[int], Any] | None = None,
) -> TokenGeneration:
    """The loop itself, on token ids: ``params`` must already be ``backend``'s native arrays.

    Stops after ``eos_id`` (None: never) or ``max_new_tokens`` tokens; calls
    ``on_token(id)`` after each one. Options are validated by :func:`generate`;
    this function checks only what it needs for safety.
    """
    check_generation_options(max_new_tokens, temperature, top_k, top_p, seed, True, overflow, None)
    C = config.context_length
    sequence = [int(i) for i in prompt_ids]
    check_prompt_fits(len(sequence), config, overflow)
    rng = np.random.Generator(np.random.PCG64(seed))
    keep = max(C - 1, 1)  # tokens a slide keeps: room for one cached step before the next slide
    slides = 0

    def prefill(window: list[int]) -> tuple[Any, Any]:
        ids = backend.asarray(np.asarray([window], dtype=np.int64), "int64")  # (1, L)
        return backend.model_forward(params, config, ids, None)

    start = time.perf_counter()
    if len(sequence) > C:  # overflow == "slide"
        logits, cache = prefill(sequence[-keep:])
        slides += 1
    else:
        logits, cache = prefill(sequence)
    new_tokens: list[int] = []
    prefill_seconds = decode_start = 0.0
    stop_reason = "max_new_tokens"
    while True:
        token = backend.sample(logits[0, -1, ...], rng.random(), temperature, top_k, top_p)
        new_tokens.append(token)
        if len(new_tokens) == 1:
            decode_start = time.perf_counter()
            prefill_seconds = decode_start - start
        if on_token is not None:
            on_token(token)
        if eos_id is not None and token == eos_id:
            stop_reason = "eos"
            break
        if len(new_tokens) >= max_new_tokens:
            break
        sequence.append(token)
        if cache.length + 1 <= C:
            step = backend.asarray(np.asarray([[token]], dtype=np.int64), "int64")  # (1, 1)
            logits, cache = backend.model_forward(params, config, step, cache)
        elif overflow == "slide":
            logits, cache = prefill(sequence[-keep:])
            slides += 1
        else:
            stop_reason = "context_full"
            break
    decode_seconds = time.perf_counter() - decode_start
    return TokenGeneration(tuple(new_tokens), stop_reason, prefill_seconds, decode_seconds, slides)


# ---------------------------------------------------------------------- batches


def generate_batch(
    backend: Backend | str | None,
    model: Checkpoint | tuple[ModelConfig, Mapping[str, Any], Any],
    prompts: Sequence[str],
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | Sequence[int] = 0,
    stop_at_eos: bool = True,
    *,
    dtype: str | None = None,
) -> list[GenerationResult]:
    """Continue every prompt of ``prompts`` in one batch; result i equals ``generate(..., prompts[i], seed=seed_i)``.

    ``seed``: one int, which every prompt uses as its own ``PCG64(seed)`` stream
    (so a prompt's continuation does not depend on its neighbours), or one seed
    per prompt. See :func:`generate_batch_tokens` for how the batch is computed.
    Sliding past the context (``overflow="slide"``) and streaming are single-prompt
    features: a batched row that fills the context stops with ``"context_full"``.
    ``prefill_seconds`` / ``decode_seconds`` of every result are the whole batch's.
    """
    backend = load_backend(backend)
    config, params, tokenizer = _unpack(model)
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise GenerationError(f"generate: prompts is {type(prompts).__name__}, expected a non-empty list of str")
    seeds = _batch_seeds(seed, len(prompts))
    for value in seeds:
        check_generation_options(max_new_tokens, temperature, top_k, top_p, value, stop_at_eos, "error", None)
    prompt_ids = [encode_prompt(tokenizer, prompt) for prompt in prompts]
    for ids in prompt_ids:
        check_prompt_fits(len(ids), config, "error")
    native = native_params(backend, params, dtype)
    outcomes = generate_batch_tokens(
        backend,
        config,
        native,
        prompt_ids,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seeds=seeds,
        eos_id=tokenizer.eos_id if stop_at_eos else None,
    )
    results = []
    for prompt, ids, outcome in zip(prompts, prompt_ids, outcomes):
        decoder = tokenizer.stream_decoder(skip_special=True)
        for token_id in ids:  # context for the first piece, exactly as generate() does
            decoder.push(token_id)
        text = "".join(decoder.push(t) for t in outcome.token_ids) + decoder.flush()
        results.append(
            GenerationResult(
                prompt=prompt,
                prompt_ids=tuple(ids),
                token_ids=outcome.token_ids,
                text=text,
                stop_reason=outcome.stop_reason,
                prefill_seconds=outcome.prefill_seconds,
                decode_seconds=outcome.decode_seconds,
                backend=backend.name,
            )
        )
    return results


def generate_batch_tokens(
    backend: Backend,
    config: ModelConfig,
    params: Mapping[str, Any],
    prompts_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seeds: Sequence[int] = (0,),
    eos_id: int | None = None,
    pad_id: int = 0,
) -> list[TokenGeneration]:
    """The batched loop on token ids: ``params`` must already be ``backend``'s native arrays.

    Left padding with a padding mask: the sequences are right-aligned in one
    ``(B, P)`` array (``P`` the longest), each padded on the left with ``pad_id``,
    and the model runs with ``backend.init_padded_cache(config, pad)`` (a
    :class:`~transformer_spec.backends.cache.PaddedKVCache`, or JAX's static
    cache with padding), which gives every row its own positions (its first real
    token is position 0) and hides padding keys from attention. So each row
    computes what it would compute alone, up to float rounding in matrix
    products of another shape.

    Each row draws its ``u`` from its own ``PCG64(seeds[b])``, one per token it
    samples, exactly as :func:`generate_tokens` does, and stops at its own
    ``eos_id``, after ``max_new_tokens``, or when alone its next position would be
    past the context (``"context_full"``). A finished row keeps its slot (fed
    ``pad_id``, its logits ignored). The batch holds at most ``C`` slots, padding
    included: when they run out while rows could go on alone, those rows are
    packed again — their sequences so far prefilled as a new, less padded batch
    — and continue; a prefill gives the logits incremental decoding gives.
    """
    if len(seeds) != len(prompts_ids):
        raise GenerationError(f"generate: {len(seeds)} seeds for {len(prompts_ids)} prompts; expected one per prompt")
    for value in seeds:
        check_generation_options(max_new_tokens, temperature, top_k, top_p, value, True, "error", None)
    C, B = config.context_length, len(prompts_ids)
    rows = [[int(i) for i in ids] for ids in prompts_ids]
    for ids in rows:
        check_prompt_fits(len(ids), config, "error")
    if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not 0 <= pad_id < config.vocab_size:
        raise GenerationError(f"generate: pad_id = {pad_id!r}, expected an id in [0, {config.vocab_size})")
    sequences = [list(ids) for ids in rows]  # prompt + tokens so far, per row
    rngs = [np.random.Generator(np.random.PCG64(value)) for value in seeds]
    new_tokens: list[list[int]] = [[] for _ in range(B)]
    stop_reasons: list[str | None] = [None] * B

    def prefill(members: list[int]) -> tuple[Any, Any]:
        """Logits (len(members), V) after each member's sequence, and the padded cache holding them."""
        longest = max(len(sequences[b]) for b in members)
        pad = tuple(longest - len(sequences[b]) for b in members)
        grid = np.asarray([[pad_id] * p + sequences[b] for p, b in zip(pad, members)], dtype=np.int64)  # (B', P)
        cache = backend.init_padded_cache(config, pad)
        logits, cache = backend.model_forward(params, config, backend.asarray(grid, "int64"), cache)  # (B', P, V)
        return logits[:, -1, ...], cache  # (B', V)

    start = time.perf_counter()
    prefill_seconds = decode_start = 0.0
    members = list(range(B))
    last, cache = prefill(members)
    while True:
        step = np.full((len(members), 1), pad_id, dtype=np.int64)  # (B', 1): finished rows are fed padding
        for slot, b in enumerate(members):
            if stop_reasons[b] is not None:
                continue
            token = backend.sample(last[slot], rngs[b].random(), temperature, top_k, top_p)
            new_tokens[b].append(token)
            if eos_id is not None and token == eos_id:
                stop_reasons[b] = "eos"
            elif len(new_tokens[b]) >= max_new_tokens:
                stop_reasons[b] = "max_new_tokens"
            elif len(sequences[b]) + 1 > C:  # alone its cache would now hold C positions: none left for this token
                stop_reasons[b] = "context_full"
            else:
                sequences[b].append(token)
                step[slot, 0] = token
        if not decode_start:
            decode_start = time.perf_counter()
            prefill_seconds = decode_start - start
        active = [b for b in members if stop_reasons[b] is None]
        if not active:
            break
        if cache.length + 1 > C:  # the batch's slots (padding included) are used up: pack the rows still going
            members = active
            last, cache = prefill(members)
            continue
        logits, cache = backend.model_forward(params, config, backend.asarray(step, "int64"), cache)
        last = logits[:, -1, ...]  # (B', V)
    decode_seconds = time.perf_counter() - decode_start
    return [
        TokenGeneration(tuple(tokens), str(reason), prefill_seconds, decode_seconds, 0)
        for tokens, reason in zip(new_tokens, stop_reasons)
    ]


def _batch_seeds(seed: Any, count: int) -> list[int]:
    if isinstance(seed, Sequence) and not isinstance(seed, str):
        if len(seed) != count:
            raise GenerationError(f"generate: {len(seed)} seeds for {count} prompts; expected one seed, or one per prompt")
        return list(seed)
    return [seed] * count


# ---------------------------------------------------------------------- checks and conversions


def check_generation_options(
    max_new_tokens: Any,
    temperature: Any,
    top_k: Any,
    top_p: Any,
    seed: Any,
    stop_at_eos: Any,
    overflow: Any,
    stream: Any,
) -> None:
    """Raise a :class:`GenerationError` (or ConfigError) for any option outside its documented range."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise GenerationError(f"generate: max_new_tokens = {max_new_tokens!r}, expected an integer >= 1")
    check_sampling_options(temperature, top_k, top_p)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GenerationError(f"generate: seed = {seed!r}, expected an integer >= 0")
    if not isinstance(stop_at_eos, bool):
        raise GenerationError(f"generate: stop_at_eos = {stop_at_eos!r}, expected True or False")
    if overflow not in OVERFLOW_POLICIES:
        raise GenerationError(f"generate: overflow = {overflow!r}, expected one of {', '.join(map(repr, OVERFLOW_POLICIES))}")
    if stream is not None and not callable(stream):
        raise GenerationError(f"generate: stream = {stream!r}, expected a function taking one str (or None)")


def check_prompt_fits(n_tokens: int, config: ModelConfig, overflow: str) -> None:
    """A GenerationError unless a prompt of ``n_tokens`` can be prefilled under the ``overflow`` policy."""
    C = config.context_length
    if n_tokens < 1:
        raise GenerationError("generate: the prompt has no tokens; expected at least one")
    if n_tokens > C and overflow == "error":
        raise GenerationError(
            f"generate: the prompt has {n_tokens} tokens and the context is {C}; expected at most {C} tokens "
            f"(shorten the prompt, or pass overflow='slide' to keep its last {max(C - 1, 1)})"
        )


def encode_prompt(tokenizer: Any, prompt: Any, *, function: str = "generate") -> list[int]:
    """The prompt's ids; an empty prompt, or one the tokenizer cannot represent, is a GenerationError."""
    if not isinstance(prompt, str):
        raise GenerationError(f"{function}: prompt is a {type(prompt).__name__}, expected a str")
    if not prompt.strip():
        raise GenerationError(f"{function}: the prompt {prompt!r} is empty; expected some text to continue")
    # A tokenizer.json whose post-processor starts every text with special ids (Llama 3: <|begin_of_text|>) gets
    # them here too, as transformers' tokenizer(prompt) would: the model was trained to see them first.
    ids = list(getattr(tokenizer, "template_prefix_ids", ())) + tokenizer.encode(prompt)
    if not ids:
        raise GenerationError(
            f"{function}: the prompt {prompt!r} encodes to no tokens; expected text the tokenizer can represent"
        )
    unk = tokenizer.unk_id
    if unk is not None and all(i == unk for i in ids):
        raise GenerationError(
            f"{function}: every token of the prompt {prompt!r} is unknown to the tokenizer (all {len(ids)} ids are the "
            f"unknown token {unk}); expected at least one word from its vocabulary of {tokenizer.vocab_size}"
        )
    return ids


def native_params(backend: Backend, params: Mapping[str, Any], dtype: str | None = None) -> dict[str, Any]:
    """``params`` as ``backend``'s arrays in ``dtype`` (default: their own dtype); native arrays of that dtype are kept."""
    if not isinstance(params, Mapping) or not params:
        raise GenerationError(f"generate: params is a {type(params).__name__}, expected a non-empty dict from name to array")
    if dtype is None:
        first = next(iter(params.values()))
        dtype = backend.dtype_of(first) if isinstance(first, backend.array_type) else dtype_name(np.asarray(first))
    backend.check_dtype_supported(dtype)  # a backend lacking the dtype says so here, before any work
    converted = {}
    for name, value in params.items():
        if isinstance(value, backend.array_type) and backend.dtype_of(value) == dtype:
            converted[name] = value
        else:
            # bfloat16 NumPy arrays (ml_dtypes) are widened exactly, one tensor at a time, for backends that lack them
            host = value if isinstance(value, backend.array_type) else as_backend_input(np.asarray(value))
            converted[name] = backend.asarray(host, dtype)
    return converted


def _unpack(model: Any) -> tuple[ModelConfig, Mapping[str, Any], Any]:
    if isinstance(model, Checkpoint):
        return model.config, model.params, model.tokenizer
    if isinstance(model, tuple) and len(model) == 3 and isinstance(model[0], ModelConfig):
        return model
    raise ConfigError(
        f"generate: model is a {type(model).__name__}, expected a Checkpoint (load_checkpoint) or a tuple "
        f"(config, params, tokenizer)"
    )


__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "GenerationError",
    "GenerationResult",
    "OVERFLOW_POLICIES",
    "STOP_REASONS",
    "TokenGeneration",
    "check_generation_options",
    "check_prompt_fits",
    "encode_prompt",
    "generate",
    "generate_batch",
    "generate_batch_tokens",
    "generate_tokens",
    "native_params",
]
