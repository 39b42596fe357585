"""Tiny Llama-family folders for the tests: random weights made by ``transformers``, a tokenizer trained by ``tokenizers``.

Nothing downloads: every file is written here, from configs and a few sentences.
"""

from __future__ import annotations

import json
from pathlib import Path

# Varied on purpose: emoji (a ZWJ family), CJK, Greek, accents, digit runs, whitespace runs, CRLF, contractions.
TEXTS = [
    "Once upon a time there was a cat who lived in a castle. It's 42 o'clock, isn't it? I'LL GO.",
    "naïve café, 東京タワー, 中文字符测试, Ελληνικά — emoji 🙂👩‍👩‍👧 and   spaces\nnew lines\t\ttabs",
    "numbers 3.14159 and 1,000,000 and 2024-12-02; a\r\nwindows line   \n\n\n  trailing   ",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Llama 3's pre-tokenizer pattern (Qwen2's differs only in \p{N} instead of \p{N}{1,3}).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(kind: str = "llama3", vocab_size: int = 300):
    """A ``tokenizers.Tokenizer``: byte-level BPE with the pre-tokenizer of ``kind`` (llama3, qwen2, smollm, gpt2)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(ignore_merges=kind == "llama3"))
    if kind in ("llama3", "qwen2"):
        pattern = LLAMA3_PATTERN if kind == "llama3" else QWEN2_PATTERN
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    elif kind == "smollm":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if kind == "qwen2":
        tokenizer.normalizer = normalizers.NFC()
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(TEXTS * 20, trainer)
    return tokenizer


def write_tokenizer(folder: Path, kind: str = "llama3", vocab_size: int = 300):
    """tokenizer.json + tokenizer_config.json (roles, chat template) in ``folder``; returns the library's tokenizer."""
    tokenizer = train_tokenizer(kind, vocab_size)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|endoftext|>",
        "chat_template": CHAT_TEMPLATE,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return tokenizer


def make_hf_folder(folder: Path, arch: str, *, seed: int = 0, vocab_size: int | None = None, **overrides):
    """A ``save_pretrained`` folder of a tiny random ``arch`` (llama, mistral, qwen2) model with a tokenizer; returns the model."""
    import torch
    import transformers

    tokenizer = write_tokenizer(folder, "qwen2" if arch == "qwen2" else "llama3")
    classes = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
    }
    config_class, model_class = classes[arch]
    options = dict(
        vocab_size=vocab_size or tokenizer.get_vocab_size(),
        hidden_size=32,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=48,
        num_hidden_layers=2,
        max_position_embeddings=64,
        rope_theta=500.0,  # not the default: a mapping that drops it shows
        rms_norm_eps=1e-5,
        tie_word_embeddings=arch == "qwen2",
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    options.update(overrides)
    torch.manual_seed(seed)
    model = model_class(config_class(**options)).eval()
    with torch.no_grad():
        # Norm weights 1 and biases 0 would hide a swapped ln1/ln2 or q/k bias: perturb everything.
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * (0.2 if parameter.ndim == 1 else 0.08))
    model.save_pretrained(folder)
    return model
