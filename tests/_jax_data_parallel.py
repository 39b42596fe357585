"""Run by tests/test_distributed.py in a fresh interpreter with 2 virtual CPU devices (XLA_FLAGS set by the caller).

Trains the same tiny model with the same seed and global batch:

* ``one``:         one device, no data-parallel group (the reference);
* ``two``:         a 2-device mesh (batch sharded, params replicated);
* ``interrupted``: the 2-device run stopped after step ``STOP_AT`` (as Ctrl-C does: it saves) ...
* ``resumed_two``: ... then resumed on 2 devices ...
* ``resumed_one``: ... and, from a copy of the same folder, resumed on one device.

Prints one JSON line: per-step losses and final weights of every run (as lists), so the test compares them.

``python tests/_jax_data_parallel.py hosts FOLDER``: instead, this process is one of several "hosts" (JAX's
``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID`` set by the caller, one CPU device each,
gloo collectives): it joins the others, trains ``hosts`` on the mesh over every host's device into FOLDER
(process 0 writes), and process 0 prints the JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import numpy as np

from transformer_spec.backends import load_backend
from transformer_spec.conformance.runner import enable_jax_cache
from transformer_spec.spec.config import ModelConfig
from transformer_spec.train.config import TrainConfig
from transformer_spec.train.pipeline import pretraining_documents, resume, start_pretraining, train_tokenizer

STEPS = int(os.environ.get("TSPEC_TEST_STEPS", "6"))
STOP_AT = 3
SEED = int(os.environ.get("TSPEC_TEST_SEED", "0"))
DATA = {
    "kind": "corpus",
    "seed": 0,
    "documents": 60,
    "held_out_seed": 7,
    "held_out_documents": 0,
}  # no evaluation: one compile fewer


def hosts(folder: str) -> None:
    from transformer_spec.train.distributed import join_hosts_if_asked

    join_hosts_if_asked("jax", 60)  # before the backend touches a device
    backend = load_backend("jax")
    enable_jax_cache(backend)
    parallel = backend.data_parallel()
    documents = pretraining_documents(DATA)
    tokenizer = train_tokenizer(documents[0], 300)
    model = ModelConfig(vocab_size=tokenizer.vocab_size, context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    config = TrainConfig.create(steps=STEPS, batch_size=4, context_length=16, lr=1e-2, seed=SEED, eval_batches=1)
    trainer = start_pretraining(
        backend, model, tokenizer, config, DATA, out_dir=folder, progress=False, documents=documents, parallel=parallel
    )
    result = trainer.run()
    params = trainer.engine.params_numpy()
    if parallel.rank == 0:
        run = {"stopped": result.stopped, "losses": result.losses, "params": _lists(params)}
        print(json.dumps({"processes": parallel.processes, "shards": parallel.shards, "hosts": run}))


def main() -> None:
    if sys.argv[1:2] == ["hosts"]:
        return hosts(sys.argv[2])
    import jax

    assert len(jax.devices()) == 2, f"expected 2 virtual devices, got {jax.devices()}"
    backend = load_backend("jax")
    enable_jax_cache(backend)  # compiled programs kept between test runs, as the conformance suite keeps them
    documents = pretraining_documents(DATA)
    tokenizer = train_tokenizer(documents[0], 300)
    model = ModelConfig(vocab_size=tokenizer.vocab_size, context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    config = TrainConfig.create(steps=STEPS, batch_size=4, context_length=16, lr=1e-2, seed=SEED, eval_batches=1)
    out: dict[str, object] = {}
    work = tempfile.mkdtemp(prefix="tspec-jax-dp-")
    try:

        def train(name: str, parallel, stop_at: int | None = None) -> None:
            trainer = start_pretraining(
                backend, model, tokenizer, config, DATA, out_dir=os.path.join(work, name), progress=False,
                documents=documents, parallel=parallel,
            )  # fmt: skip
            if stop_at is not None:
                trainer.on_step = lambda t, result: t.request_stop("SIGINT") if t.step == stop_at else None
            result = trainer.run()
            out[name] = {"stopped": result.stopped, "losses": result.losses, "params": _lists(trainer.engine.params_numpy())}

        def resumed(name: str, folder: str, parallel) -> None:
            trainer = resume(backend, folder, progress=False, parallel=parallel)
            result = trainer.run()
            out[name] = {"stopped": result.stopped, "losses": result.losses, "params": _lists(trainer.engine.params_numpy())}

        two_devices = backend.data_parallel(devices=2)
        out["shards"] = two_devices.shards
        train("one", None)
        train("two", two_devices)
        train("interrupted", two_devices, stop_at=STOP_AT)
        shutil.copytree(os.path.join(work, "interrupted"), os.path.join(work, "copy"))
        resumed("resumed_two", os.path.join(work, "interrupted"), two_devices)
        resumed("resumed_one", os.path.join(work, "copy"), None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


def _lists(params: dict[str, np.ndarray]) -> dict[str, list]:
    return {n: np.asarray(p, np.float64).ravel().tolist() for n, p in params.items()}


if __name__ == "__main__":
    sys.exit(main())
