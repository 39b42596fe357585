"""Write the placeholder default model into ``transformer_spec/assets/default_model/``.

It is NOT trained: a byte-level BPE tokenizer learned from the seeded corpus
(so prompts tokenize into real sub-words) and a tiny GPT-2-shaped model with
freshly initialised weights (``init_parameters``), so ``tspec generate`` works on
a fresh install. Its output is fluent-looking gibberish. ``config.json`` says
``"trained": false``; the training pipeline replaces this folder with a trained
model through the same ``save_checkpoint``.

Run: ``python scripts/make_placeholder_model.py [--out DIR]`` (about a second).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transformer_spec.checkpoint import save_checkpoint  # noqa: E402
from transformer_spec.data.corpus import END_OF_TEXT, generate_corpus  # noqa: E402
from transformer_spec.spec.config import ModelConfig  # noqa: E402
from transformer_spec.spec.model import init_parameters  # noqa: E402
from transformer_spec.tokenizers import ByteLevelBPETokenizer  # noqa: E402

CORPUS_SEED = 0
CORPUS_DOCUMENTS = 2000
TOKENIZER_VOCAB = 1024  # a small BPE: the corpus's common words become single tokens
WEIGHTS_SEED = 0


def build(out: Path) -> Path:
    documents = generate_corpus(seed=CORPUS_SEED, n_documents=CORPUS_DOCUMENTS)
    tokenizer = ByteLevelBPETokenizer.train(documents, vocab_size=TOKENIZER_VOCAB, special_tokens=(END_OF_TEXT,))
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,  # 1024
        context_length=128,  # long enough for a short story prompt and its continuation
        d_model=64,  # tiny: ~180k parameters, ~700 KB as float32
        n_heads=4,
        n_layers=2,
        d_ff=256,  # 4·D, like GPT-2
    )
    params = init_parameters(config, seed=WEIGHTS_SEED)
    metadata = {
        "trained": False,
        "description": "placeholder: random GPT-2-style initial weights and a BPE tokenizer trained on the seeded corpus",
        "made_by": "scripts/make_placeholder_model.py",
        "corpus": {"seed": CORPUS_SEED, "n_documents": CORPUS_DOCUMENTS},
        "weights_seed": WEIGHTS_SEED,
    }
    return save_checkpoint(out, config, params, tokenizer, metadata)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "transformer_spec" / "assets" / "default_model", help="checkpoint folder to write"
    )
    args = parser.parse_args()
    folder = build(args.out)
    print(f"wrote {folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
