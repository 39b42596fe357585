"""Hugging Face ``tokenizer.json`` (byte-level BPE) read into our BPE: ids equal the ``tokenizers`` library's.

Each tokenizer is trained here by the ``tokenizers`` library (tests/llama_helpers.py),
with the pre-tokenizer of Llama 3, Qwen2 (NFC too), SmolLM or GPT-2: nothing downloads.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from transformer_spec.tokenizers import HFByteLevelBPETokenizer, TokenizerFileError, load_tokenizer

from .conftest import run_cli
from .llama_helpers import CHAT_TEMPLATE, TEXTS, write_tokenizer

tokenizers = pytest.importorskip("tokenizers", reason="the `tokenizers` library (the oracle) is not installed")

KINDS = ("llama3", "qwen2", "smollm", "gpt2")
PROBES = [
    *TEXTS,
    "",
    " ",
    "x  y   z    \n\n  \t\t\r\n",
    "<|im_start|>user hi<|im_end|><|endoftext|>",
    "A1234567 9 ١٢٣ (Arabic-Indic digits) ⅫⅣ",
    "🙂🙂🙂 👍🏽 🏳️‍🌈 e\u0301 (combining) Å vs Å (NFC)",
    "日本語のテキストと한국어 텍스트 and 中文",
    "don't DON'T we've THEY'RE   'tis",
]


def _random_texts(count: int, seed: int = 0) -> list[str]:
    """Texts drawn from a mix of scripts, emoji, digits and whitespace (seeded)."""
    rng = np.random.default_rng(seed)
    pools = [
        "abcdefgh XYZ",
        "0123456789",
        " \t\n\r  ",
        "東京中文字符日本語",
        "🙂👩‍👧🏽",
        "éàüßΩж",
        ".,!?'\"-()",
        "\u0301\u200d",
    ]
    texts = []
    for _ in range(count):
        pieces = [rng.choice(list(pools[rng.integers(len(pools))])) for _ in range(rng.integers(1, 40))]
        texts.append("".join(pieces))
    return texts


@pytest.fixture(scope="module", params=KINDS)
def pair(request, tmp_path_factory):
    """(the library's tokenizer, ours read from its tokenizer.json, the folder)."""
    folder = tmp_path_factory.mktemp(request.param)
    library = write_tokenizer(folder, request.param)
    return library, load_tokenizer(folder), folder


def test_ids_equal_the_tokenizers_library(pair) -> None:
    library, ours, _ = pair
    assert isinstance(ours, HFByteLevelBPETokenizer)
    for text in PROBES + _random_texts(200):
        expected = library.encode(text).ids
        assert ours.encode(text, parse_special=True) == expected, text
        assert ours.decode(expected) == library.decode(expected, skip_special_tokens=False), text


def test_special_tokens_and_roles(pair) -> None:
    library, ours, _ = pair
    assert ours.special_tokens == {t: library.token_to_id(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")}
    assert ours.eos_id == library.token_to_id("<|endoftext|>")  # from tokenizer_config.json
    assert ours.bos_id is None
    # Without parse_special the spelling of a special token is ordinary text (never its id).
    assert library.token_to_id("<|im_end|>") not in ours.encode("<|im_end|>")
    assert ours.decode(ours.encode("a<|im_end|>b", parse_special=True), skip_special=True) == "ab"


def test_round_trip_and_save(pair, tmp_path) -> None:
    _, ours, _ = pair
    for text in PROBES[:8]:
        assert ours.decode(ours.encode(text)) == ours._normalize(text)
    again = load_tokenizer(ours.save(tmp_path))
    assert isinstance(again, HFByteLevelBPETokenizer)
    for text in PROBES:
        assert again.encode(text, parse_special=True) == ours.encode(text, parse_special=True)
    assert again.chat_template == ours.chat_template


def test_chat_template_matches_transformers(pair) -> None:
    transformers = pytest.importorskip("transformers")
    _, ours, folder = pair
    reference = transformers.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), eos_token="<|endoftext|>")
    reference.chat_template = CHAT_TEMPLATE
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France? 🙂"}]
    for add in (True, False):
        text = ours.apply_chat_template(messages, add_generation_prompt=add)
        assert text == reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=add)
        assert ours.encode(text, parse_special=True) == reference(text)["input_ids"]


def test_chat_template_is_sandboxed(tmp_path) -> None:
    write_tokenizer(tmp_path, "llama3")
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["chat_template"] = "{{ messages.__class__.__mro__ }}"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(TokenizerFileError, match="SecurityError"):
        load_tokenizer(tmp_path).apply_chat_template([{"role": "user", "content": "x"}])
    config["chat_template"] = "{% do messages.append(1) %}"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(TokenizerFileError, match="chat template"):
        load_tokenizer(tmp_path).apply_chat_template([{"role": "user", "content": "x"}])
    config["chat_template"] = "{{ raise_exception('roles must alternate') }}"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(TokenizerFileError, match="roles must alternate"):
        load_tokenizer(tmp_path).apply_chat_template([{"role": "user", "content": "x"}])


def test_unsupported_families_are_named(tmp_path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    unigram = Tokenizer(models.Unigram())
    unigram.train_from_iterator(TEXTS[:1], trainers.UnigramTrainer(vocab_size=200))
    unigram.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerFileError, match=r"model.type 'Unigram' \(SentencePiece-Unigram\).*supported: byte-level BPE"):
        load_tokenizer(tmp_path)
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    wordpiece.train_from_iterator(TEXTS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[UNK]"]))
    wordpiece.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerFileError, match=r"model.type 'WordPiece'"):
        load_tokenizer(tmp_path)
    document = json.loads((tmp_path / "tokenizer.json").read_text())
    document["model"] = {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": True}
    (tmp_path / "tokenizer.json").write_text(json.dumps(document))
    with pytest.raises(TokenizerFileError, match=r"model.byte_fallback = True is not supported"):
        load_tokenizer(tmp_path)


def test_tokenizer_conformance_section_passes(tmp_path) -> None:
    write_tokenizer(tmp_path, "llama3")
    result = run_cli("conformance", "--tokenizer", str(tmp_path), env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_template_post_processor_prefix_is_what_generation_prepends(tmp_path) -> None:
    from tokenizers import processors

    from transformer_spec.generate import encode_prompt

    library = write_tokenizer(tmp_path, "llama3")
    bos, end = library.token_to_id("<|im_start|>"), library.token_to_id("<|im_end|>")
    library.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|im_start|> $A <|im_end|>", special_tokens=[("<|im_start|>", bos), ("<|im_end|>", end)]
            ),
        ]
    )
    library.save(str(tmp_path / "tokenizer.json"))
    ours = load_tokenizer(tmp_path)
    assert (ours.template_prefix_ids, ours.template_suffix_ids) == ((bos,), (end,))
    for text in PROBES[:6]:
        if text:
            expected = library.encode(text).ids  # the library's default: the template applied
            assert [*ours.template_prefix_ids, *ours.encode(text, parse_special=True), *ours.template_suffix_ids] == expected
    assert encode_prompt(ours, "Once upon a time")[0] == bos  # generation starts as transformers' tokenizer(prompt) does
