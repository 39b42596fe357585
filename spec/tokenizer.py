r"""Tokenization: turning text into the integer ids the model reads, and back.

The first and last step of the pipeline (text → tokenize → embed → … →
sample → append → detokenize). Two kinds share one interface; the
application layer implements them in ``transformer_spec.tokenizers``.

Byte-level BPE (GPT-2)
----------------------
Text $s$ is encoded as UTF-8 bytes $b_1 \dots b_n$, each byte shown as one
printable character of GPT-2's byte alphabet $\beta$ (so the vocabulary's
first 256 tokens cover every possible input). GPT-2's regular expression

    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+

cuts the text into words $w_1 \dots w_m$ with $s = w_1 \cdots w_m$. Each word
starts as its byte symbols; with merge ranks $r(a, b)$ (line order of
``merges.txt``), repeat

$$ (a^*, b^*) = \arg\min_{(a, b)\ \text{adjacent}} r(a, b), \qquad
   \text{replace every } a^* b^* \text{ (left to right) by the symbol } a^* b^*, $$

until no adjacent pair has a rank. The ids are ``vocab.json`` of the final
symbols, word after word. Decoding inverts $\beta$ and decodes UTF-8:

$$ \operatorname{decode}(\operatorname{encode}(s)) = s \quad \text{for every Unicode string } s. $$

Training learns the merges from a corpus: start from the 256 bytes and
repeatedly merge the most frequent adjacent pair (ties: the smallest
``(left id, right id)``), until the vocabulary has ``vocab_size`` tokens.

Word level
----------
Lowercase, split with ``\w+|[^\w\s]`` (words; single punctuation marks), look
each token up (``<unk>`` when unseen). Decoding joins with single spaces, with
no space before punctuation (details in ``transformer_spec.tokenizers.word``). Spacing
and case are lost, so the round trip holds for the *normal form*:
$\operatorname{decode}(\operatorname{encode}(s)) = \operatorname{normalize}(s)$
when every token of $s$ is in the vocabulary.

Interface
---------
* ``encode(text, *, add_special=False, parse_special=False) -> list[int]`` —
  ``add_special`` puts ``bos_id`` first and ``eos_id`` last (where they exist);
  ``parse_special`` turns a special token's spelling in ``text`` into its id.
* ``decode(ids, *, skip_special=False) -> str``.
* ``stream_decoder(*, skip_special=False)`` → an object with
  ``push(id) -> str`` and ``flush() -> str`` for ids arriving one by one.
* ``vocab_size`` (ids lie in ``[0, vocab_size)``); ``bos_id``, ``eos_id``,
  ``unk_id``, ``pad_id`` (an ``int``, or ``None`` where the kind has none);
  ``special_tokens`` (text → id).
* ``train(...)``, ``save(directory)``, ``load(directory)``; and
  ``load_tokenizer(directory)``, which tells the kinds apart by their files
  (``tokenizer.json`` with ``"type": "word"``; ``vocab.json`` + ``merges.txt``).
* ``byte_level`` (``bool``) declares the kind: ``True`` promises the lossless
  round trip of every Unicode string (and an ``InvalidTextError`` for a lone
  surrogate, which has no UTF-8 form); ``False`` or absent, it is not promised.
* ``normalize(text) -> str`` — word-level tokenizers: the normal form that
  ``decode(encode(text))`` gives when every token is known; ``lowercase``
  (``bool``) says whether the normal form folds case.

The conformance suite (``tspec conformance --tokenizer PATH``, or
``transformer_spec.conformance.runner.run_tokenizer``) checks any object with this interface,
not only ours, and applies each invariant only where the tokenizer declares
what it needs: ``tokenizer.roundtrip`` needs ``byte_level``;
``tokenizer.word_level_roundtrip`` needs ``normalize``; ``tokenizer.save_load``
and the file errors need ``save(directory)`` and ``type(tokenizer).load(directory)``;
training twice (``tokenizer.deterministic``) needs the classmethod
``train(texts)`` or ``train(texts, vocab_size=...)``; ``tokenizer.gpt2_compatible``
needs ``byte_level``, a ``save`` that writes ``vocab.json`` + ``merges.txt``, and
the ``tokenizers`` library as the oracle. Otherwise the check is skipped, with the reason.

Special cases
-------------
* ``encode("") == []`` and ``decode([]) == ""``.
* Arbitrary ids may form invalid UTF-8; ``decode`` then yields U+FFFD, exactly
  as ``bytes.decode("utf-8", errors="replace")``.
* GPT-2's ``<|endoftext|>`` serves as both ``bos_id`` and ``eos_id``; the word
  tokenizer has four distinct specials ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3.

Errors
------
Every error is a ``SpecError`` that names the argument or file:

* ``OutOfRangeError`` — an id outside ``[0, vocab_size)`` (or unassigned) in
  ``decode`` / ``push``; never wrapped around.
* ``DTypeError`` — text that is not a ``str``; an id that is a float or bool.
* ``InvalidTextError`` — text holding a lone surrogate (no UTF-8 form).
* ``TokenizerFileError`` — a missing file, malformed JSON (with its line and
  column), a bad ``merges.txt`` line (with its number), a vocabulary missing
  byte symbols or special tokens, a merge whose parts are not in the vocabulary.
* ``ConfigError`` — bad training options (``vocab_size`` below specials + 256,
  ``min_count`` < 1, ``max_vocab`` < 4, a special token that ordinary text could produce).

References
----------
Sennrich et al. (2016), *Neural Machine Translation of Rare Words with Subword
Units*; Radford et al. (2019), *Language Models are Unsupervised Multitask
Learners* (§2.2, byte-level BPE) and OpenAI's ``gpt-2/src/encoder.py``.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="tokenizer",
    title="Tokenization",
    # Methods of a tokenizer object (transformer_spec.tokenizers), not backend primitives:
    # tokenization runs on the host, the same for every backend.
    functions=("encode", "decode", "stream_decoder", "train", "save", "load"),
    invariants=invariants(
        (
            "tokenizer.roundtrip",
            "Byte-level BPE: decode(encode(s)) == s for every Unicode string s, emoji and combining marks included.",
        ),
        ("tokenizer.ids_in_range", "Every id encode returns names a token: 0 <= id < vocab_size, and decode accepts it."),
        (
            "tokenizer.deterministic",
            "encode is a function of the text (cache warm or cold, any call order), and training twice on the same corpus writes identical files.",
        ),
        (
            "tokenizer.no_special_from_text",
            "Ordinary text never yields a special-token id, even text spelling '<|endoftext|>' or '<bos>'; only parse_special=True or add_special=True do.",
        ),
        (
            "tokenizer.stream_matches_decode",
            "The pieces of a stream decoder plus flush() concatenate to decode(ids), and no piece shows a broken character: an incomplete UTF-8 tail is held back.",
        ),
        (
            "tokenizer.word_level_roundtrip",
            "Word tokenizer: decode(encode(s)) == normalize(s) when every token of s is known, encode(decode(ids)) == ids for special-free ids, and normalize is idempotent.",
        ),
        (
            "tokenizer.gpt2_compatible",
            "On the same vocab.json and merges.txt, encode gives the same ids as GPT-2's algorithm (the tokenizers library), for files written by either side.",
        ),
        (
            "tokenizer.save_load",
            "save then load (or load_tokenizer) gives a tokenizer with the same vocabulary and the same ids for every text.",
        ),
        (
            "tokenizer.errors",
            "Missing files, malformed JSON (with its line), bad merges, out-of-range ids, non-str text and bad training options raise a SpecError naming what was wrong and what was expected.",
        ),
    ),
)
