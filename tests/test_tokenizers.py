"""Property tests of the tokenizers against the invariants of ``spec/tokenizer.py``.

Each test is named after the invariant it checks. The byte-level BPE is also
checked against the ``tokenizers`` library (the oracle: GPT-2's algorithm in
Rust) in both directions — our files read by it, its trainer's files read by us.
"""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transformer_spec.spec.errors import ConfigError, DTypeError, OutOfRangeError, SpecError
from transformer_spec.spec.tokenizer import COMPONENT
from transformer_spec.tokenizers import (
    ByteLevelBPETokenizer,
    InvalidTextError,
    Tokenizer,
    TokenizerFileError,
    WordTokenizer,
    bytes_to_unicode,
    load_tokenizer,
    pretokenize,
)
from transformer_spec.tokenizers.bpe import PRETOKENIZER_ENGINE
from transformer_spec.tokenizers.word import SPECIAL_TOKENS, join_tokens

try:
    import tokenizers as hf_tokenizers
except ImportError:  # the oracle is a test extra
    hf_tokenizers = None

needs_oracle = pytest.mark.skipif(
    hf_tokenizers is None,
    reason="the `tokenizers` library (the GPT-2 oracle) is not installed; pip install 'transformer-spec[test]'",
)

# Fixtures are module-scoped (built once), so Hypothesis may share them across examples.
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def covers(invariant_id: str):
    """Tag a test with the invariant it checks; an unknown id fails at import, so ids cannot drift."""
    COMPONENT.invariant(invariant_id)

    def tag(test):
        test.invariant_id = invariant_id
        return test

    return tag


# --------------------------------------------------------------------- corpus

ENGLISH_WORDS = (
    "the a an cat dog sat on mat and it was happy because dogs don't like cats who're sitting there "
    "Once upon time king castle queen garden apple orange fruit market school children park "
    "She He They asked said what is capital of Nigeria Abuja France Paris good question "
    "1999 42 3.14 café naïve résumé Zürich"
).split()
PUNCTUATION = [".", ",", "!", "?", ";", ":", "(", ")", "'", '"', "-", "—", "…"]


def generated_english(seed: int = 1234, sentences: int = 1500) -> list[str]:
    """A small deterministic English-like corpus: sentences of corpus words with punctuation."""
    rng = random.Random(seed)
    texts = []
    for _ in range(sentences):
        words = [rng.choice(ENGLISH_WORDS) for _ in range(rng.randint(3, 18))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(PUNCTUATION))
        sentence = " ".join(words)
        texts.append(sentence[0].upper() + sentence[1:] + rng.choice([".", "!", "?", ".\n", "\n\n"]))
    return texts


CORPUS = generated_english()
BPE_VOCAB_SIZE = 700


@pytest.fixture(scope="module")
def bpe() -> ByteLevelBPETokenizer:
    return ByteLevelBPETokenizer.train(CORPUS, vocab_size=BPE_VOCAB_SIZE)


@pytest.fixture(scope="module")
def bpe_dir(bpe, tmp_path_factory) -> Path:
    return bpe.save(tmp_path_factory.mktemp("bpe"))


@pytest.fixture(scope="module")
def oracle(bpe_dir):
    """The `tokenizers` library reading OUR files."""
    if hf_tokenizers is None:
        pytest.skip("the `tokenizers` library is not installed")
    return hf_tokenizers.ByteLevelBPETokenizer(str(bpe_dir / "vocab.json"), str(bpe_dir / "merges.txt"))


@pytest.fixture(scope="module")
def oracle_trained(tmp_path_factory):
    """Files written by the `tokenizers` library's trainer, and the library reading them."""
    if hf_tokenizers is None:
        pytest.skip("the `tokenizers` library is not installed")
    trained = hf_tokenizers.ByteLevelBPETokenizer()
    trained.train_from_iterator(
        CORPUS, vocab_size=BPE_VOCAB_SIZE, min_frequency=2, special_tokens=["<|endoftext|>"], show_progress=False
    )
    folder = tmp_path_factory.mktemp("hf_trained")
    trained.save_model(str(folder))
    return folder, trained


@pytest.fixture(scope="module")
def word() -> WordTokenizer:
    return WordTokenizer.train(CORPUS)


@pytest.fixture(scope="module")
def word_dir(word, tmp_path_factory) -> Path:
    return word.save(tmp_path_factory.mktemp("word"))


# ----------------------------------------------------------------- strategies

# Multi-code-point characters and scripts where a byte-level tokenizer is most
# likely to split a character across tokens.
TRICKY_PIECES = [
    "😀",
    "👍🏽",
    "👨\u200d👩\u200d👧",
    "🇳🇬",
    "e\u0301",
    "a\u0308\u0304",
    "\u0915\u094d\u0937",
    "𝔘𝔫𝔦",
    "\u200d",
    "\ufeff",
    "\x00",
    "\r\n",
    "ß",
    "İ",
    "ﬁ",
    "中文",
    "한국어",
    "\u2028",
    "\xa0",
    "  ",
    "\t",
    "'s",
    "'ll",
    "<|endoftext|>",
    "<bos>",
]
WHITESPACE = [" ", "  ", "\n", "\t", " \n ", "\u3000"]

words_and_tricky_pieces = st.sampled_from(ENGLISH_WORDS + PUNCTUATION + TRICKY_PIECES + WHITESPACE)


def unicode_text() -> st.SearchStrategy[str]:
    """Any Unicode string without lone surrogates (which have no UTF-8 form): random
    code points (unassigned ones included), emoji sequences, combining marks and words."""
    return st.lists(st.one_of(st.characters(exclude_categories=["Cs"]), words_and_tricky_pieces), max_size=40).map("".join)


def assigned_text() -> st.SearchStrategy[str]:
    """Text from code points assigned in Python's Unicode database, mixed with words.

    ``\\p{L}`` / ``\\p{N}`` of code points that only newer Unicode versions assign
    differ between engines (Python, `regex`, Oniguruma), so GPT-2 compatibility is
    a property of assigned code points."""
    assigned = st.characters(exclude_categories=["Cs", "Cn"])
    return st.lists(st.one_of(assigned, words_and_tricky_pieces), max_size=40).map("".join)


def id_lists(vocab_size: int) -> st.SearchStrategy[list[int]]:
    """Arbitrary in-range ids (they may form invalid UTF-8)."""
    return st.lists(st.integers(0, vocab_size - 1), max_size=30)


def case_variants(token: str) -> list[str]:
    """Spellings of ``token`` that lowercase back to it."""
    return sorted({variant for variant in (token, token.upper(), token.title()) if variant.lower() == token})


# ------------------------------------------------------------ tokenizer.roundtrip


@covers("tokenizer.roundtrip")
@PROPERTY
@given(text=unicode_text())
def test_roundtrip_bpe(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@covers("tokenizer.roundtrip")
@PROPERTY
@given(text=unicode_text())
def test_roundtrip_bpe_with_special_tokens_parsed(bpe, text):
    ids = bpe.encode(text, parse_special=True)
    assert bpe.decode(ids) == text


@covers("tokenizer.roundtrip")
def test_roundtrip_bpe_on_corpus(bpe):
    text = "".join(CORPUS)
    assert bpe.decode(bpe.encode(text)) == text


# ------------------------------------------------------------ tokenizer.ids_in_range


@covers("tokenizer.ids_in_range")
@PROPERTY
@given(text=unicode_text(), add_special=st.booleans(), parse_special=st.booleans())
def test_ids_in_range(bpe, word, text, add_special, parse_special):
    for tokenizer in (bpe, word):
        ids = tokenizer.encode(text, add_special=add_special, parse_special=parse_special)
        assert all(isinstance(i, int) and 0 <= i < tokenizer.vocab_size for i in ids)
        tokenizer.decode(ids)  # every id names a token: decode accepts all of them


# ------------------------------------------------------------ tokenizer.deterministic


@covers("tokenizer.deterministic")
@PROPERTY
@given(texts=st.lists(unicode_text(), min_size=1, max_size=5))
def test_encode_is_a_function_of_the_text(bpe, bpe_dir, texts):
    warm = [bpe.encode(t) for t in texts]
    cold = ByteLevelBPETokenizer.load(bpe_dir)  # a fresh, empty cache
    assert [cold.encode(t) for t in reversed(texts)] == list(reversed(warm))
    assert [bpe.encode(t) for t in texts] == warm


@covers("tokenizer.deterministic")
def test_training_twice_writes_identical_files(tmp_path):
    corpus = CORPUS[:300]
    first = ByteLevelBPETokenizer.train(corpus, vocab_size=400).save(tmp_path / "first")
    second = ByteLevelBPETokenizer.train(list(reversed(corpus)), vocab_size=400).save(tmp_path / "second")
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    word_first = WordTokenizer.train(corpus).save(tmp_path / "word_first")
    word_second = WordTokenizer.train(list(reversed(corpus))).save(tmp_path / "word_second")
    assert (word_first / "tokenizer.json").read_bytes() == (word_second / "tokenizer.json").read_bytes()


@covers("tokenizer.deterministic")
def test_bpe_tie_rule_smallest_pair_ids_first():
    # " cd" and "ab" each occur twice: (Ġ,c), (a,b), (c,d) all have count 2.
    # Ids: <|endoftext|> = 0, then byte b has id 1 + b, so (Ġ=space, c) < (a, b) < (c, d).
    # Merging Ġc consumes (c, d); (Ġc, d) then has count 2 and the highest ids.
    tokenizer = ByteLevelBPETokenizer.train(["ab cd", "ab cd"], vocab_size=1000)
    assert tokenizer.merges == (("Ġ", "c"), ("a", "b"), ("Ġc", "d"))
    assert tokenizer.vocab["<|endoftext|>"] == 0 and tokenizer.vocab["a"] == 1 + ord("a")


@covers("tokenizer.deterministic")
def test_word_tie_rule_frequency_then_code_point_order():
    tokenizer = WordTokenizer.train(["b a", "a b c", "d"], max_vocab=6)
    assert tokenizer.vocab == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]
    assert WordTokenizer.train(["b a", "a b c"], min_count=2).vocab[4:] == ["a", "b"]


# ------------------------------------------------------------ tokenizer.no_special_from_text


@st.composite
def text_spelling_special_tokens(draw, specials: list[str]) -> tuple[str, int]:
    """Ordinary text with special-token spellings inserted; returns it and how many were inserted."""
    pieces = draw(st.lists(st.one_of(unicode_text(), st.sampled_from(specials)), max_size=8))
    text = "".join(pieces)
    return text, sum(text.count(s) for s in specials)


@covers("tokenizer.no_special_from_text")
@PROPERTY
@given(data=st.data())
def test_no_special_from_text_bpe(bpe, data):
    text, spelled = data.draw(text_spelling_special_tokens(["<|endoftext|>"]))
    special_ids = set(bpe.special_tokens.values())
    assert not special_ids & set(bpe.encode(text))
    parsed = bpe.encode(text, parse_special=True)
    assert sum(i in special_ids for i in parsed) == spelled
    wrapped = bpe.encode(text, add_special=True)
    assert wrapped[0] == bpe.bos_id and wrapped[-1] == bpe.eos_id
    assert not special_ids & set(wrapped[1:-1])


@covers("tokenizer.no_special_from_text")
@PROPERTY
@given(data=st.data())
def test_no_special_from_text_word(word, data):
    text, _ = data.draw(text_spelling_special_tokens(list(SPECIAL_TOKENS)))
    special_ids = set(word.special_tokens.values())
    # <unk> is the one special that ordinary text may yield: for unseen tokens.
    assert not (special_ids - {word.unk_id}) & set(word.encode(text))
    parsed = word.encode(text, parse_special=True)
    assert parsed.count(word.bos_id) == text.count("<bos>")
    assert word.encode(text, add_special=True) == [word.bos_id, *word.encode(text), word.eos_id]


def test_special_token_roles():
    tokenizer = ByteLevelBPETokenizer.train(CORPUS[:50], vocab_size=300)
    eot = tokenizer.special_tokens["<|endoftext|>"]
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id, tokenizer.pad_id) == (eot, eot, None, None)
    word_tokenizer = WordTokenizer.train(CORPUS[:50])
    assert [word_tokenizer.pad_id, word_tokenizer.unk_id, word_tokenizer.bos_id, word_tokenizer.eos_id] == [0, 1, 2, 3]
    assert isinstance(tokenizer, Tokenizer) and isinstance(word_tokenizer, Tokenizer)


def test_a_merge_that_would_spell_a_special_token_is_never_learned():
    tokenizer = ByteLevelBPETokenizer.train([" cd"] * 3, vocab_size=1000, special_tokens=["Ġc"])
    assert ("Ġ", "c") not in tokenizer.merges
    assert tokenizer.special_tokens["Ġc"] not in tokenizer.encode(" cd c")


# ------------------------------------------------------------ tokenizer.stream_matches_decode


def stream(tokenizer, ids, **options) -> list[str]:
    decoder = tokenizer.stream_decoder(**options)
    return [decoder.push(i) for i in ids] + [decoder.flush()]


@covers("tokenizer.stream_matches_decode")
@PROPERTY
@given(text=unicode_text())
def test_stream_of_valid_text_never_shows_a_broken_character(bpe, text):
    pieces = stream(bpe, bpe.encode(text))
    assert "".join(pieces) == text
    shown = ""
    for piece in pieces:
        shown += piece
        assert text.startswith(shown)  # a replacement character for a split emoji would break this


@covers("tokenizer.stream_matches_decode")
@PROPERTY
@given(data=st.data(), skip_special=st.booleans())
def test_stream_of_any_ids_concatenates_to_decode(bpe, word, data, skip_special):
    for tokenizer in (bpe, word):
        ids = data.draw(id_lists(tokenizer.vocab_size))
        assert "".join(stream(tokenizer, ids, skip_special=skip_special)) == tokenizer.decode(ids, skip_special=skip_special)


@covers("tokenizer.stream_matches_decode")
def test_stream_holds_back_an_incomplete_character(bpe):
    emoji = "😀"  # four bytes: four byte tokens, none merged
    ids = [bpe.vocab[bytes_to_unicode()[b]] for b in emoji.encode("utf-8")]
    decoder = bpe.stream_decoder()
    assert [decoder.push(i) for i in ids[:3]] == ["", "", ""]
    assert decoder.pending_bytes == 3
    assert decoder.push(ids[3]) == emoji and decoder.flush() == ""
    decoder.push(ids[0])
    assert decoder.flush() == "\ufffd"  # an unfinished tail at the end is replaced, as decode does


# ------------------------------------------------------------ tokenizer.word_level_roundtrip


@st.composite
def known_token_text(draw, tokenizer: WordTokenizer) -> tuple[str, list[str]]:
    """Text made of vocabulary tokens (in any case that lowercases back), separated by
    whitespace; returns the text and its tokens."""
    ordinary = [t for t in tokenizer.vocab if t not in SPECIAL_TOKENS]
    tokens = draw(st.lists(st.sampled_from(ordinary), max_size=20))
    parts = []
    for token in tokens:
        parts.append(draw(st.sampled_from(WHITESPACE)))  # at least one space: words never glue together
        parts.append(draw(st.sampled_from(case_variants(token))))
    return "".join(parts), tokens


@covers("tokenizer.word_level_roundtrip")
@PROPERTY
@given(data=st.data())
def test_word_roundtrip_of_normalised_text(word, data):
    text, tokens = data.draw(known_token_text(word))
    ids = word.encode(text)
    assert word.unk_id not in ids
    assert word.decode(ids) == word.normalize(text) == join_tokens(tokens)
    assert word.encode(word.normalize(text)) == ids


@covers("tokenizer.word_level_roundtrip")
@PROPERTY
@given(data=st.data())
def test_word_encode_decode_of_ids(word, data):
    ids = data.draw(st.lists(st.integers(len(SPECIAL_TOKENS), word.vocab_size - 1), max_size=30))
    assert word.encode(word.decode(ids)) == ids


@covers("tokenizer.word_level_roundtrip")
@PROPERTY
@given(text=unicode_text())
def test_word_normalize_is_idempotent(word, text):
    normal = word.normalize(text)
    assert word.normalize(normal) == normal
    assert word.split(normal) == word.split(text)


def test_word_decode_spacing_rule():
    tokenizer = WordTokenizer.train(["Don't (ever) say well-known things, it costs $5!"])
    text = "Don't  (ever) say well - known things ,it costs $ 5 !"
    assert tokenizer.decode(tokenizer.encode(text)) == "don't (ever) say well-known things, it costs $5!"
    assert tokenizer.decode(tokenizer.encode("Say what!")) == "say <unk>!"
    assert tokenizer.decode(tokenizer.encode("Say what!"), skip_special=True) == "say!"
    assert tokenizer.decode(tokenizer.encode("things", add_special=True), skip_special=True) == "things"


# ------------------------------------------------------------ tokenizer.gpt2_compatible


def test_byte_alphabet_is_gpt2s():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert (table[ord(" ")], table[ord("\n")], table[ord("A")]) == ("Ġ", "Ċ", "A")
    assert all(not c.isspace() and unicodedata.category(c)[0] != "C" for c in table.values())
    if hf_tokenizers is not None:
        assert set(table.values()) == set(hf_tokenizers.pre_tokenizers.ByteLevel.alphabet())


@covers("tokenizer.gpt2_compatible")
@needs_oracle
def test_our_files_give_the_oracle_s_ids_on_the_corpus(bpe, oracle):
    for text in CORPUS[:400]:
        assert bpe.encode(text) == oracle.encode(text).ids, text


@covers("tokenizer.gpt2_compatible")
@needs_oracle
@PROPERTY
@given(text=assigned_text())
def test_our_files_give_the_oracle_s_ids(bpe, oracle, text):
    assert bpe.encode(text) == oracle.encode(text).ids


@covers("tokenizer.gpt2_compatible")
@needs_oracle
@PROPERTY
@given(data=st.data())
def test_parsed_special_tokens_match_the_oracle_s_added_tokens(bpe, bpe_dir, data):
    text, _ = data.draw(text_spelling_special_tokens(["<|endoftext|>"]))
    text = "".join(c for c in text if unicodedata.category(c) != "Cn")
    with_special = hf_tokenizers.ByteLevelBPETokenizer(str(bpe_dir / "vocab.json"), str(bpe_dir / "merges.txt"))
    with_special.add_special_tokens(["<|endoftext|>"])
    assert bpe.encode(text, parse_special=True) == with_special.encode(text).ids


@covers("tokenizer.gpt2_compatible")
@needs_oracle
@PROPERTY
@given(text=assigned_text())
def test_oracle_trained_files_load_and_give_the_same_ids(oracle_trained, text):
    folder, trained = oracle_trained
    ours = ByteLevelBPETokenizer.load(folder)
    assert ours.special_tokens == {"<|endoftext|>": trained.token_to_id("<|endoftext|>")}
    # The trainer's in-memory tokenizer holds <|endoftext|> as an added token, so it parses the spelling.
    assert ours.encode(text, parse_special=True) == trained.encode(text).ids
    assert ours.decode(ours.encode(text)) == text


@covers("tokenizer.gpt2_compatible")
@needs_oracle
def test_oracle_trained_files_on_the_corpus(oracle_trained):
    folder, trained = oracle_trained
    ours = load_tokenizer(folder)
    assert isinstance(ours, ByteLevelBPETokenizer)
    for text in CORPUS[:400]:
        assert ours.encode(text, parse_special=True) == trained.encode(text).ids, text


@covers("tokenizer.gpt2_compatible")
@needs_oracle
@PROPERTY
@given(text=assigned_text())
def test_pretokenizer_matches_the_oracle_s(text):
    oracle_words = [
        word for word, _ in hf_tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True).pre_tokenize_str(text)
    ]
    table = bytes_to_unicode()
    assert ["".join(table[b] for b in w.encode("utf-8")) for w in pretokenize(text)] == oracle_words


@covers("tokenizer.gpt2_compatible")
@pytest.mark.skipif(PRETOKENIZER_ENGINE != "regex", reason="the `regex` module is not installed: nothing to compare with")
@PROPERTY
@given(text=assigned_text())
def test_stdlib_fallback_pattern_matches_the_regex_module(text):
    assert pretokenize(text, engine="re") == pretokenize(text, engine="regex")


# ------------------------------------------------------------ tokenizer.save_load


@covers("tokenizer.save_load")
def test_saved_files_are_in_gpt2_format(bpe, bpe_dir):
    lines = (bpe_dir / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "#version: 0.2" and lines[-1] == ""
    assert [tuple(line.split(" ")) for line in lines[1:-1]] == list(bpe.merges)
    vocab = json.loads((bpe_dir / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == bpe.vocab and list(vocab.values()) == sorted(vocab.values())


@covers("tokenizer.save_load")
@PROPERTY
@given(text=unicode_text())
def test_load_tokenizer_gives_the_same_tokenizer(bpe, bpe_dir, word, word_dir, text):
    loaded_bpe = load_tokenizer(bpe_dir)
    assert loaded_bpe.vocab == bpe.vocab and loaded_bpe.encode(text) == bpe.encode(text)
    assert (loaded_bpe.bos_id, loaded_bpe.eos_id) == (bpe.bos_id, bpe.eos_id)
    loaded_word = load_tokenizer(word_dir)
    assert loaded_word.vocab == word.vocab and loaded_word.encode(text) == word.encode(text)
    assert WordTokenizer.load(word_dir / "tokenizer.json").vocab == word.vocab


def test_roles_survive_save_and_load(tmp_path):
    tokenizer = ByteLevelBPETokenizer.train(
        CORPUS[:50], vocab_size=300, special_tokens=["<|endoftext|>", "<|pad|>"], bos_token=None, pad_token="<|pad|>"
    )
    loaded = ByteLevelBPETokenizer.load(tokenizer.save(tmp_path))
    assert (loaded.bos_id, loaded.eos_id, loaded.pad_id) == (None, tokenizer.eos_id, tokenizer.special_tokens["<|pad|>"])


# ------------------------------------------------------------ tokenizer.errors


def error_message(excinfo) -> str:
    return str(excinfo.value)


@covers("tokenizer.errors")
def test_missing_files(tmp_path):
    with pytest.raises(TokenizerFileError, match="does not exist"):
        load_tokenizer(tmp_path / "nowhere")
    with pytest.raises(TokenizerFileError, match="holds no tokenizer"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.json").write_text("{}", encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="has vocab.json but no merges.txt"):
        load_tokenizer(tmp_path)
    with pytest.raises(TokenizerFileError, match="merges.txt does not exist"):
        ByteLevelBPETokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="holds an empty object; expected a non-empty object"):
        load_tokenizer(tmp_path)
    with pytest.raises(TokenizerFileError, match="tokenizer.json"):
        WordTokenizer.load(tmp_path)


@covers("tokenizer.errors")
def test_malformed_json_names_the_line(bpe, word, tmp_path):
    folder = bpe.save(tmp_path / "bpe")
    (folder / "vocab.json").write_text('{\n  "a": 1,\n  "b": 2\n  "c": 3\n}', encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=r"vocab\.json line 4 column 3") as excinfo:
        load_tokenizer(folder)
    assert excinfo.value.line == 4 and excinfo.value.path == folder / "vocab.json"

    word_folder = word.save(tmp_path / "word")
    (word_folder / "tokenizer.json").write_text('{"type": "word",\n"vocab": [1, 2,]}', encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=r"tokenizer\.json line 2"):
        load_tokenizer(word_folder)


@covers("tokenizer.errors")
def test_bad_merges_and_vocab_files(bpe, tmp_path):
    folder = bpe.save(tmp_path)
    merges = folder / "merges.txt"
    good = merges.read_text(encoding="utf-8").split("\n")
    merges.write_text("\n".join(good[:3] + ["Ġ t h"] + good[3:]), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=r"merges\.txt line 4: .* expected two tokens"):
        load_tokenizer(folder)
    merges.write_text("\n".join(good[:2] + ["Ġ ☃"] + good[2:]), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=r"line 3: .*'☃', which is not in the vocabulary"):
        load_tokenizer(folder)
    merges.write_text("\n".join(good[:3] + [good[1]] + good[3:]), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=r"line 4: .* already appears on line 2"):
        load_tokenizer(folder)
    merges.write_text("\n".join(good), encoding="utf-8")

    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    (folder / "vocab.json").write_text(json.dumps([vocab]), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="holds a JSON array; expected a non-empty object"):
        load_tokenizer(folder)
    del vocab["Ā"]  # byte 0: a vocabulary that cannot encode every text
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merges.write_text("#version: 0.2\n", encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="lacks 1 of the 256 byte symbols"):
        load_tokenizer(folder)


@covers("tokenizer.errors")
def test_bad_word_tokenizer_files(tmp_path):
    path = tmp_path / "tokenizer.json"
    for document, message in [
        ({"type": "bpe", "vocab": []}, r"\"type\" is 'bpe'; expected one of \['word'\]"),
        ({"model": {"type": "BPE"}}, "Hugging Face tokenizers file"),
        ({"type": "word", "version": 1, "vocab": ["<pad>", "<unk>"]}, "lacks the special tokens"),
        ({"type": "word", "version": 1, "vocab": [*SPECIAL_TOKENS, "two words"]}, "not a single token"),
        ({"type": "word", "version": 7, "vocab": list(SPECIAL_TOKENS)}, "reads version 1"),
    ]:
        path.write_text(json.dumps(document), encoding="utf-8")
        with pytest.raises(TokenizerFileError, match=message):
            load_tokenizer(tmp_path)


@covers("tokenizer.errors")
@PROPERTY
@given(data=st.data())
def test_ids_out_of_range_are_errors(bpe, word, data):
    for tokenizer in (bpe, word):
        bad_id = data.draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=tokenizer.vocab_size)))
        ids = data.draw(id_lists(tokenizer.vocab_size))
        ids.insert(data.draw(st.integers(0, len(ids))), bad_id)
        with pytest.raises(OutOfRangeError, match=rf"ids\[\d+\] = {bad_id} is outside the vocabulary"):
            tokenizer.decode(ids)
        with pytest.raises(OutOfRangeError, match=r"stream_decoder\.push"):
            tokenizer.stream_decoder().push(bad_id)


@covers("tokenizer.errors")
def test_bad_arguments(bpe, word):
    for tokenizer in (bpe, word):
        with pytest.raises(DTypeError, match="text must be a str, got bytes"):
            tokenizer.encode(b"hello")
        with pytest.raises(DTypeError, match=r"ids\[1\] is 2.0"):
            tokenizer.decode([1, 2.0])
        with pytest.raises(DTypeError, match=r"ids\[0\] is the bool True"):
            tokenizer.decode([True])
    with pytest.raises(InvalidTextError, match=r"text\[2\] is the lone surrogate U\+D800"):
        bpe.encode("ab\ud800")
    with pytest.raises(ConfigError, match="vocab_size = 100; expected an int >= 257"):
        ByteLevelBPETokenizer.train(CORPUS[:5], vocab_size=100)
    with pytest.raises(ConfigError, match="also the byte symbol"):
        ByteLevelBPETokenizer.train(CORPUS[:5], vocab_size=300, special_tokens=["a"])
    with pytest.raises(ConfigError, match="min_frequency = 0"):
        ByteLevelBPETokenizer.train(CORPUS[:5], vocab_size=300, min_frequency=0)
    with pytest.raises(DTypeError, match="got one str"):
        ByteLevelBPETokenizer.train("just one text", vocab_size=300)
    with pytest.raises(ConfigError, match="max_vocab = 2"):
        WordTokenizer.train(CORPUS[:5], max_vocab=2)
    with pytest.raises(ConfigError, match="min_count = 0"):
        WordTokenizer.train(CORPUS[:5], min_count=0)
    with pytest.raises(ConfigError, match="bos_token='<nope>' is not a special token"):
        ByteLevelBPETokenizer(bpe.vocab, bpe.merges, bos_token="<nope>")
    assert all(issubclass(e, SpecError) for e in (TokenizerFileError, InvalidTextError))


def test_every_invariant_has_a_test():
    import sys

    module = sys.modules[__name__]
    covered = {getattr(test, "invariant_id", None) for name, test in vars(module).items() if name.startswith("test_")} - {None}
    assert covered == {inv.id for inv in COMPONENT.invariants}
