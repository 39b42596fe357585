"""Training: the optimizer's math, the schedule, clipping, the loop (determinism, resume), masking, and bad input.

The optimizer is checked three ways: against a float64 NumPy reference written
element by element from the paper's equations, against ``torch.optim.AdamW``
(with ``clip_grad_norm_``) over several scheduled steps, and its PyTorch
in-place fast path and JAX-compiled step against the plain path.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_spec.data import Example
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, SpecError
from transformer_spec.spec.model import init_parameters
from transformer_spec.spec.tolerances import tolerance
from transformer_spec.train.config import SMOKE, TrainConfig
from transformer_spec.train.data import IGNORE_INDEX, ExampleBatches, encode_example, format_prompt, pad_batch
from transformer_spec.train.optim import (
    AdamWConfig,
    adamw_update,
    bias_corrections,
    clip_by_global_norm,
    clip_coefficient,
    global_norm,
    init_moments,
    learning_rate_at,
    optimizer_step,
)

torch = pytest.importorskip("torch")

from transformer_spec.backends import load_backend  # noqa: E402
from transformer_spec.train.pipeline import start_finetuning, start_pretraining, train_tokenizer  # noqa: E402
from transformer_spec.train.steps import make_engine  # noqa: E402
from transformer_spec.train.trainer import STATE_FILE, TrainingDivergedError, TrainingError  # noqa: E402

from .conftest import ROOT  # noqa: E402

TINY = ModelConfig(vocab_size=48, context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32)
CORPUS_SPEC = {"kind": "corpus", "seed": 0, "documents": 120, "held_out_seed": 7, "held_out_documents": 10}


def close(got, expected, dtype="float32", kind="primitive") -> bool:
    tol = tolerance(dtype, kind)
    return bool(np.all(np.abs(np.asarray(got, np.float64) - expected) <= tol.atol + tol.rtol * np.abs(expected)))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models: one thread is fastest, and far faster than two on a busy shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def torch_backend():
    return load_backend("torch")


@pytest.fixture(scope="module")
def tokenizer():
    from transformer_spec.train.pipeline import pretraining_documents

    documents, _ = pretraining_documents(CORPUS_SPEC)
    return train_tokenizer(documents, 300)


def smoke_model(tokenizer) -> ModelConfig:
    return replace(SMOKE.model, vocab_size=tokenizer.vocab_size)


def small_train_config(**changes) -> TrainConfig:
    base = TrainConfig.create(steps=12, batch_size=4, context_length=32, lr=1e-2, eval_batches=1, log_every=100)
    return base.with_changes(**changes) if changes else base


# ---------------------------------------------------------------------- the optimizer's math


def reference_adamw(p, g, m, v, step, lr, b1, b2, eps, wd, decay):
    """AdamW (Loshchilov & Hutter, Algorithm 2 as PyTorch implements it), one element at a time, float64."""
    p, m, v = p.astype(np.float64).copy(), m.astype(np.float64).copy(), v.astype(np.float64).copy()
    for i in np.ndindex(p.shape):
        m[i] = b1 * m[i] + (1 - b1) * g[i]
        v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
        m_hat = m[i] / (1 - b1**step)
        v_hat = v[i] / (1 - b2**step)
        if decay:
            p[i] -= lr * wd * p[i]
        p[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return p, m, v


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), step=st.integers(1, 50), lr=st.floats(1e-5, 1e-1), wd=st.sampled_from([0.0, 0.1, 0.5]))
def test_adamw_update_matches_elementwise_reference(seed, step, lr, wd):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = {n: rng.standard_normal(p.shape) for n, p in params.items()}
    m = {n: rng.standard_normal(p.shape) * 0.1 for n, p in params.items()}
    v = {n: rng.random(p.shape) * 0.1 for n, p in params.items()}
    config = AdamWConfig(lr=1.0, weight_decay=wd, beta1=0.9, beta2=0.99, eps=1e-8, total_steps=100, warmup_steps=0)
    bc1, bc2 = bias_corrections(step, config)
    new_p, new_m, new_v = adamw_update(params, grads, m, v, lr=lr, bias_correction1=bc1, bias_correction2=bc2, config=config)
    for name in params:
        expected = reference_adamw(
            params[name], grads[name], m[name], v[name], step, lr, 0.9, 0.99, 1e-8, wd, params[name].ndim >= 2
        )
        for got, want in zip((new_p[name], new_m[name], new_v[name]), expected):
            assert close(got, want, "float64")


def test_matches_torch_optim_adamw_with_clipping_and_schedule():
    """Five scheduled, clipped steps agree with torch.optim.AdamW + clip_grad_norm_ (decay on matrices only)."""
    rng = np.random.default_rng(0)
    shapes = {"w": (5, 3), "e": (7, 5), "b": (3,), "g": (5,)}
    params = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    config = AdamWConfig(lr=0.05, warmup_steps=2, total_steps=5, weight_decay=0.1, grad_clip=0.5, min_lr_ratio=0.1)
    tensors = {n: torch.tensor(p, requires_grad=True) for n, p in params.items()}
    groups = [
        {"params": [tensors[n] for n in shapes if len(shapes[n]) >= 2], "weight_decay": 0.1},
        {"params": [tensors[n] for n in shapes if len(shapes[n]) < 2], "weight_decay": 0.0},
    ]
    reference = torch.optim.AdamW(groups, lr=0.05, betas=(config.beta1, config.beta2), eps=config.eps)
    ours = {n: p.copy() for n, p in params.items()}
    m, v = init_moments(ours)
    for step in range(1, 6):
        grads = {n: (rng.standard_normal(s) * 3).astype(np.float32) for n, s in shapes.items()}
        for group in reference.param_groups:
            group["lr"] = learning_rate_at(step, config)
        for n, t in tensors.items():
            t.grad = torch.tensor(grads[n])
        torch.nn.utils.clip_grad_norm_(list(tensors.values()), config.grad_clip)
        reference.step()
        ours, m, v, _, _ = optimizer_step(ours, grads, m, v, step, config)
    for n in shapes:
        assert close(ours[n], tensors[n].detach().numpy().astype(np.float64), "float32", "composite"), n


def test_torch_fused_adamw_hook_equals_plain_update(torch_backend):
    rng = np.random.default_rng(1)
    config = AdamWConfig(lr=0.01, warmup_steps=1, total_steps=10, grad_clip=None, weight_decay=0.1)
    params = {"w": rng.standard_normal((4, 6)).astype(np.float32), "b": rng.standard_normal(6).astype(np.float32)}
    plain = {n: torch.tensor(p) for n, p in params.items()}
    fast = {n: torch.tensor(p) for n, p in params.items()}
    pm, pv = init_moments(plain)
    fm, fv = init_moments(fast)
    decay = {n: p.ndim >= 2 for n, p in params.items()}
    for step in range(1, 4):
        grads = {n: torch.tensor(rng.standard_normal(p.shape).astype(np.float32) * 5) for n, p in params.items()}
        plain, pm, pv, _, lr = optimizer_step(plain, grads, pm, pv, step, config)
        bc1, bc2 = bias_corrections(step, config)
        fast, fm, fv = torch_backend.adamw_update(
            fast, grads, fm, fv, lr=lr, beta1=config.beta1, beta2=config.beta2, eps=config.eps,
            weight_decay=config.weight_decay, bias_correction1=bc1, bias_correction2=bc2, decay=decay,
        )  # fmt: skip
    for n in params:
        for a, b in ((plain, fast), (pm, fm), (pv, fv)):
            assert close(b[n].numpy(), a[n].numpy().astype(np.float64))


# ---------------------------------------------------------------------- the schedule and clipping


def test_schedule_warmup_cosine_and_floor():
    config = AdamWConfig(lr=1.0, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    assert learning_rate_at(1, config) == pytest.approx(0.1)
    assert learning_rate_at(5, config) == pytest.approx(0.5)
    assert learning_rate_at(10, config) == pytest.approx(1.0)
    assert learning_rate_at(60, config) == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine
    assert learning_rate_at(110, config) == pytest.approx(0.1)
    assert learning_rate_at(500, config) == pytest.approx(0.1)
    rates = [learning_rate_at(s, config) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # never increases after warm-up
    no_warmup = AdamWConfig(lr=2.0, warmup_steps=0, total_steps=4, min_lr_ratio=0.0)
    assert learning_rate_at(1, no_warmup) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi / 4)))
    with pytest.raises(ConfigError):
        learning_rate_at(0, config)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-3, 1e3), max_norm=st.floats(0.1, 10.0))
def test_clipping_caps_the_global_norm_and_keeps_direction(seed, scale, max_norm):
    rng = np.random.default_rng(seed)
    grads = {"a": rng.standard_normal((3, 2)) * scale, "b": rng.standard_normal(5) * scale}
    clipped, norm = clip_by_global_norm(grads, max_norm)
    expected_norm = math.sqrt(sum(float((g**2).sum()) for g in grads.values()))
    assert float(norm) == pytest.approx(expected_norm)
    new_norm = float(global_norm(clipped))
    if expected_norm <= max_norm:
        assert all(np.allclose(clipped[n], grads[n]) for n in grads)  # untouched
    else:
        assert new_norm == pytest.approx(max_norm, rel=1e-5)
    factor = float(clip_coefficient(norm, max_norm))
    assert 0 < factor <= 1
    assert all(np.allclose(clipped[n], grads[n] * factor) for n in grads)  # one factor for all: direction kept


def test_optimizer_config_errors():
    for kwargs, fragment in (
        ({"lr": 0.0}, "learning rate"),
        ({"lr": -1e-3}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"grad_clip": 0.0}, "gradient clip"),
        ({"warmup_steps": 20, "total_steps": 10}, "warm-up"),
        ({"beta1": 1.0}, "beta1"),
    ):
        with pytest.raises(ConfigError, match=fragment):
            AdamWConfig(**kwargs)
    with pytest.raises(ConfigError, match="batch size"):
        TrainConfig.create(batch_size=0)


# ---------------------------------------------------------------------- engines


def test_engines_agree_with_the_plain_path(torch_backend):
    """The torch fast engine and the JAX jit-compiled step follow the plain path (same seed, same batches).

    (The JAX backend's plain path is the same code as torch's plain path; only its compiled step is checked.)"""
    params = init_parameters(TINY, 0)
    optimizer = AdamWConfig(lr=1e-2, warmup_steps=1, total_steps=6)
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 48, (2, 16)), rng.integers(0, 48, (2, 16))) for _ in range(3)]
    runs = {}
    engines = [("plain", torch_backend), ("auto", torch_backend)]
    try:
        engines.append(("auto", load_backend("jax")))
    except SpecError:
        pass
    for kind, backend in engines:
        engine = make_engine(kind, backend, TINY, optimizer, params)
        losses = [engine.step(ids, targets, s + 1).loss for s, (ids, targets) in enumerate(batches)]
        runs[(kind, backend.name)] = (losses, engine.params_numpy())
    reference_losses, reference_params = runs[("plain", "torch")]
    for key, (losses, final) in runs.items():
        assert close(losses, np.asarray(reference_losses, np.float64), "float32", "composite"), key
        for name in reference_params:
            assert close(final[name], reference_params[name].astype(np.float64), "float32", "composite"), (key, name)


def test_backend_without_autodiff_is_refused():
    with pytest.raises(ConfigError, match="no automatic differentiation"):
        make_engine("auto", load_backend("numpy"), TINY, AdamWConfig(), init_parameters(TINY, 0))


# ---------------------------------------------------------------------- the loop


def test_loss_decreases_on_a_tiny_model(torch_backend):
    engine = make_engine(
        "auto", torch_backend, TINY, AdamWConfig(lr=1e-2, warmup_steps=2, total_steps=40), init_parameters(TINY, 0)
    )
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 48, (4, 16))
    targets = np.roll(ids, -1, axis=1)  # a learnable mapping: predict the next id of a fixed batch
    losses = [engine.step(ids, targets, s + 1).loss for s in range(40)]
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_same_seed_same_losses_other_seed_other_losses(torch_backend, tokenizer):
    def losses(seed):
        config = small_train_config(seed=seed)
        trainer = start_pretraining(torch_backend, smoke_model(tokenizer), tokenizer, config, CORPUS_SPEC, progress=False)
        return trainer.run().losses

    first, second, other = losses(3), losses(3), losses(4)
    assert first == second  # bit for bit
    assert first != other
    assert first[-1] < first[0]


def test_resume_equals_uninterrupted_run(torch_backend, tokenizer, tmp_path):
    config = small_train_config(checkpoint_every=5)
    model = smoke_model(tokenizer)
    whole = start_pretraining(
        torch_backend, model, tokenizer, config, CORPUS_SPEC, out_dir=tmp_path / "whole", progress=False
    ).run()

    stopper = start_pretraining(torch_backend, model, tokenizer, config, CORPUS_SPEC, out_dir=tmp_path / "cut", progress=False)
    stopper.on_step = lambda trainer, result: trainer.request_stop() if trainer.step == 7 else None
    cut = stopper.run()
    assert cut.stopped == "interrupted" and cut.step == 7
    state = json.loads((tmp_path / "cut" / STATE_FILE).read_text())
    assert state["step"] == 7

    from transformer_spec.train.pipeline import resume

    resumed = resume(torch_backend, tmp_path / "cut", progress=False).run()
    assert resumed.stopped == "finished" and resumed.step == config.steps
    assert resumed.losses == whole.losses  # the first 7 from the first session, the rest recomputed: identical
    from transformer_spec.checkpoint import load_checkpoint

    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "cut")
    assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)


def test_finetune_resume_equals_uninterrupted_run(torch_backend, tokenizer, tmp_path):
    """The fine-tuning data order (epochs over examples) is part of the saved state too."""
    from transformer_spec.checkpoint import load_checkpoint
    from transformer_spec.train.pipeline import resume

    model = smoke_model(tokenizer)
    base_dir = tmp_path / "base"
    start_pretraining(
        torch_backend, model, tokenizer, small_train_config(steps=3), CORPUS_SPEC, out_dir=base_dir, progress=False
    ).run()
    base = load_checkpoint(base_dir)
    from transformer_spec.train.pipeline import replay_spec

    spec = {
        "kind": "jsonl",
        "paths": [str(write_examples(tmp_path / "qa.jsonl", 7))],
        "eval_path": None,
        "replay": replay_spec(base, 2, 60),
    }  # rehearsal windows are drawn from the same saved generator
    config = TrainConfig.create(steps=8, batch_size=3, context_length=64, lr=5e-3, log_every=100)
    whole = start_finetuning(torch_backend, base, config, spec, out_dir=tmp_path / "whole", progress=False).run()
    stopper = start_finetuning(torch_backend, base, config, spec, out_dir=tmp_path / "cut", progress=False)
    stopper.on_step = lambda trainer, result: trainer.request_stop() if trainer.step == 4 else None
    assert stopper.run().step == 4
    assert resume(torch_backend, tmp_path / "cut", progress=False).run().losses == whole.losses


def write_examples(path: Path, count: int) -> Path:
    from transformer_spec.data import write_jsonl

    write_jsonl(path, [Example(f"What is {i} plus one?", f"It is {i + 1}.", "qa") for i in range(count)])
    return path


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(torch_backend, tokenizer, tmp_path):
    config = small_train_config(checkpoint_every=3)
    trainer = start_pretraining(
        torch_backend, smoke_model(tokenizer), tokenizer, config, CORPUS_SPEC, out_dir=tmp_path / "run", progress=False
    )
    real_step = trainer.engine.step

    def failing_step(ids, targets, step):
        result = real_step(ids, targets, step)
        return replace(result, loss=float("nan"), applied=False) if step == 5 else result

    trainer.engine.step = failing_step
    with pytest.raises(TrainingDivergedError, match=r"step 5 .*last good checkpoint \(step 3\)"):
        trainer.run()
    from transformer_spec.checkpoint import load_checkpoint

    kept = load_checkpoint(tmp_path / "run")
    assert kept.metadata["step"] == 3
    assert json.loads((tmp_path / "run" / STATE_FILE).read_text())["step"] == 3


def test_a_new_run_never_overwrites_an_old_one(torch_backend, tokenizer, tmp_path):
    model = smoke_model(tokenizer)
    start_pretraining(
        torch_backend, model, tokenizer, small_train_config(steps=2), CORPUS_SPEC, out_dir=tmp_path, progress=False
    ).run()
    with pytest.raises(TrainingError, match="already holds a training run"):
        start_pretraining(
            torch_backend, model, tokenizer, small_train_config(steps=2), CORPUS_SPEC, out_dir=tmp_path, progress=False
        )


# ---------------------------------------------------------------------- answer-only loss


def test_only_response_tokens_are_scored(tokenizer):
    example = Example("What is the capital of Kenya?", "The capital of Kenya is Nairobi.", "qa")
    encoded = encode_example(tokenizer, example, 64)
    prompt_ids = tokenizer.encode(format_prompt(example.prompt))
    scored = encoded.targets != IGNORE_INDEX
    assert not scored[: len(prompt_ids) - 1].any()  # no prompt token is a target
    assert scored[len(prompt_ids) - 1 :].all()  # every response token (and the end-of-text) is
    assert tokenizer.decode(encoded.targets[scored].tolist()) == " " + example.response + "<|endoftext|>"
    following = encoded.ids[1:]  # the targets are the inputs shifted by one, wherever both exist
    assert np.array_equal(encoded.targets[:-1][scored[:-1]], following[scored[:-1]])


def test_masked_loss_is_the_mean_over_response_positions(torch_backend, tokenizer):
    """The batch loss equals the mean -log p over scored positions only; the prompt's tokens change nothing."""
    examples = [Example("Hi!", "Hello there.", "chat"), Example("Name a fruit.", "A mango.", "qa")]
    encoded = [encode_example(tokenizer, e, 64) for e in examples]
    ids, targets = pad_batch(encoded, tokenizer.eos_id, 64)
    assert ids.shape[1] % 16 == 0 and (targets[:, -1] == IGNORE_INDEX).all()
    model = smoke_model(tokenizer)
    engine = make_engine("plain", torch_backend, model, AdamWConfig(), init_parameters(model, 0))
    loss, count = engine.loss(ids, targets)
    logits, _ = torch_backend.model_forward(engine.params, model, torch_backend.asarray(ids, "int64"))
    log_probs = torch.log_softmax(logits.double(), -1).numpy()
    keep = targets != IGNORE_INDEX
    expected = -np.mean([log_probs[b, t, targets[b, t]] for b, t in zip(*np.nonzero(keep))])
    assert count == keep.sum()
    assert close(loss, expected, "float32", "composite")


def test_replay_rows_join_each_batch_fully_scored(tokenizer):
    from transformer_spec.train.data import TokenStream, encode_documents
    from transformer_spec.train.trainer import ExampleSource

    encoded = [encode_example(tokenizer, Example(f"Q{i}?", "An answer.", "qa"), 64) for i in range(6)]
    stream = TokenStream(encode_documents(tokenizer, ["Once upon a time, there was a cat named Mia."] * 20))
    source = ExampleSource(ExampleBatches(encoded, tokenizer.eos_id, 64), None, stream, 3)
    ids, targets = source.next_batch(np.random.default_rng(0), small_train_config(batch_size=4, context_length=64))
    assert ids.shape[0] == 4 + 3 and targets.shape == ids.shape
    assert (targets[:4] == IGNORE_INDEX).any()  # the examples' prompts and padding are not scored
    assert (targets[4:] != IGNORE_INDEX).all()  # rehearsed text is scored everywhere
    assert np.array_equal(targets[4:, :-1], ids[4:, 1:])  # next-token targets
    with pytest.raises(ConfigError, match="replay"):
        ExampleSource(ExampleBatches(encoded, tokenizer.eos_id, 64), None, None, 2)


def test_example_batches_cover_each_epoch(tokenizer):
    encoded = [encode_example(tokenizer, Example(str(i), "x" * (i + 1), "qa"), 64) for i in range(5)]
    batches = ExampleBatches(encoded, tokenizer.eos_id, 64)
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(5):  # 5 batches of 2 = two epochs of 5 examples
        ids, _ = batches.next_batch(rng, 2)
        seen.extend(tokenizer.decode([t for t in row.tolist() if t != tokenizer.eos_id]) for row in ids)
    prompts = [s.split("\n")[0] for s in seen]
    assert sorted(prompts[:5]) == sorted(f"User: {i}" for i in range(5))


# ---------------------------------------------------------------------- the CLI: bad input → one line, exit 2


# The bad-input cases of every command live in tests/test_bad_input.py (the catalogue); its in-process runner:
from .test_bad_input import cli, write_hf_gpt2_folder  # noqa: E402


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A smoke-preset pretraining run made by the CLI (also checks that the command works end to end)."""
    out = tmp_path_factory.mktemp("cli") / "base"
    code, stdout, stderr = cli(
        "train", "--preset", "smoke", "--out", str(out), "--steps", "4", "--documents", "60", "--threads", "1"
    )
    assert code == 0, stderr
    assert "pretrained: 4 steps" in stdout
    return out


def test_nan_from_the_cli_keeps_the_last_good_checkpoint(tmp_path):
    """A learning rate of 1e30 blows the weights up: the run stops with exit 2 and the last finite checkpoint stays."""
    out = tmp_path / "run"
    code, _, stderr = cli(
        "train",
        "--preset",
        "smoke",
        "--documents",
        "40",
        "--out",
        str(out),
        "--lr",
        "1e30",
        "--warmup",
        "0",
        "--steps",
        "6",
        "--checkpoint-every",
        "1",
        "--threads",
        "1",
        "--quiet",
    )
    assert code == 2, stderr
    error = [line for line in stderr.splitlines() if line.strip()]
    assert len(error) == 1 and "became" in error[0] and "last good checkpoint" in error[0], stderr
    from transformer_spec.checkpoint import load_checkpoint

    kept = load_checkpoint(out)
    assert 1 <= kept.metadata["step"] < 6
    assert f"(step {kept.metadata['step']})" in error[0]


def test_ctrl_c_saves_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "transformer_spec.cli",
            "train",
            "--preset",
            "smoke",
            "--documents",
            "60",
            "--out",
            str(out),
            "--steps",
            "100000",
            "--log-every",
            "1",
            "--threads",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    for line in process.stderr:  # wait until training has started
        if line.startswith("step "):
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"--resume {out}" in stderr
    state = json.loads((out / STATE_FILE).read_text())
    assert state["step"] >= 1
    code, _, stderr = cli("train", "--resume", str(out), "--steps", str(state["step"] + 3), "--threads", "1", "--quiet")
    assert code == 0, stderr
    assert json.loads((out / STATE_FILE).read_text())["step"] == state["step"] + 3


def test_finetune_eval_and_chat_commands(base_run, tmp_path):
    tuned = tmp_path / "tuned"
    code, _, stderr = cli(
        "finetune",
        "--preset",
        "smoke",
        "--checkpoint",
        str(base_run),
        "--out",
        str(tuned),
        "--steps",
        "3",
        "--threads",
        "1",
        "--quiet",
    )
    assert code == 0, stderr
    report = tmp_path / "eval.json"
    code, stdout, stderr = cli(
        "eval",
        "--checkpoint",
        str(tuned),
        "--held-out-documents",
        "5",
        "--corpus-documents",
        "60",
        "--ngram-orders",
        "1,2",
        "--max-new-tokens",
        "3",
        "--json",
        str(report),
    )
    assert code == 0, stderr
    results = json.loads(report.read_text())
    assert results["stage"] == "finetuned"
    assert math.isfinite(results["perplexity"]["word_perplexity"]) and [r["n"] for r in results["ngram"]] == [1, 2]
    assert results["qa"]["summary"]["all"]["examples"] == len(results["qa"]["answers"]) > 0
    assert "per-word ppl" in stdout
    code, stdout, stderr = cli("chat", "--checkpoint", str(tuned), "--max-new-tokens", "3", "What is the capital of Kenya?")
    assert code == 0, stderr


def test_text_from_a_pipe_is_read_once(tmp_path):
    """``tspec train --text <(cat book.txt)``: a pipe can be read only once, so the command must not read it twice."""
    import threading

    text = ("Once upon a time, a small cat found a red ball in the garden. " * 500).encode()  # 31 kB
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        code, stdout, stderr = cli(
            "train", "--preset", "smoke", "--out", str(tmp_path / "run"), "--text", f"/dev/fd/{read_end}",
            "--steps", "2", "--threads", "1", "--quiet",
        )  # fmt: skip
    finally:
        writer.join(timeout=10)
        os.close(read_end)
    assert code == 0, stderr
    assert "pretrained: 2 steps" in stdout
    assert "is not a regular file" in stderr  # told that --resume cannot read the pipe again


def test_overwrite_writes_into_a_folder_that_holds_files(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "config.json").write_text('{"mine": true}\n')
    args = ["train", "--preset", "smoke", "--documents", "40", "--out", str(folder), "--steps", "1", "--threads", "1", "--quiet"]
    code, _, stderr = cli(*args)
    assert code == 2 and "already holds config.json, notes.txt" in stderr
    assert (folder / "config.json").read_text() == '{"mine": true}\n'  # refused: nothing changed
    code, _, stderr = cli(*args, "--overwrite")
    assert code == 0, stderr
    from transformer_spec.checkpoint import load_checkpoint

    assert load_checkpoint(folder).metadata["step"] == 1
    assert (folder / "notes.txt").read_text() == "my notes\n"  # files that are not the run's are left alone


def test_every_command_accepts_a_hugging_face_gpt2_folder(tmp_path, tokenizer):
    """eval, chat, finetune --checkpoint and train --init read the same sources as generate."""
    hf = write_hf_gpt2_folder(tmp_path / "hf", tokenizer)
    code, stdout, stderr = cli("eval", "--checkpoint", str(hf), "--no-qa", "--held-out-documents", "3", "--ngram-orders", "")
    assert code == 0, stderr
    assert "per-token ppl" in stdout
    code, _, stderr = cli("chat", "--checkpoint", str(hf), "--max-new-tokens", "2", "--raw", "Once upon a time")
    assert code == 0, stderr
    code, _, stderr = cli(
        "finetune", "--preset", "smoke", "--checkpoint", str(hf), "--out", str(tmp_path / "tuned"), "--steps", "1",
        "--replay-documents", "20", "--threads", "1", "--quiet",
    )  # fmt: skip
    assert code == 0, stderr
    code, _, stderr = cli(
        "train", "--preset", "smoke", "--documents", "40", "--init", str(hf), "--out", str(tmp_path / "more"),
        "--steps", "1", "--threads", "1", "--quiet",
    )  # fmt: skip
    assert code == 0, stderr
    from transformer_spec.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "more").config.vocab_size == tokenizer.vocab_size


def test_chat_warns_when_the_question_slides_out_of_the_context(base_run):
    long_question = "What is the capital of the country that lies far to the north of all the others? " * 8
    code, _, stderr = cli("chat", "--checkpoint", str(base_run), "--max-new-tokens", "2", long_question)
    assert code == 0, stderr
    assert "warning: the question" in stderr and "slid out" in stderr
    code, _, stderr = cli("chat", "--checkpoint", str(base_run), "--max-new-tokens", "2", "Hi?")
    assert code == 0, stderr
    assert "warning" not in stderr
