"""Tests of the generated data: countries, the pretraining corpus, fine-tuning sets, JSONL files, sentiment."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_spec.data import (
    COUNTRIES,
    COUNTRY_BY_NAME,
    DOCUMENTS_PER_COVERAGE_ROUND,
    END_OF_TEXT,
    HAPPY,
    SAD,
    DatasetError,
    Example,
    build_finetune_dataset,
    capital_qa_examples,
    chat_examples,
    generate_corpus,
    generate_sentiment_examples,
    instruction_examples,
    join_documents,
    read_jsonl,
    split_countries,
    write_jsonl,
)
from transformer_spec.data.corpus import KIND_BLOCK, capital_statements
from transformer_spec.data.finetune import SHORT_ANSWER_SUFFIX, answer_names_capital
from transformer_spec.data.sentiment import HAPPY_WORDS, SAD_WORDS
from transformer_spec.spec.errors import ConfigError, SpecError

seeds = st.integers(min_value=0, max_value=2**32)
FAST = settings(max_examples=15, deadline=None)


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


# ---------------------------------------------------------------------------
# Countries
# ---------------------------------------------------------------------------


def test_countries_are_many_distinct_and_well_formed():
    assert len(COUNTRIES) >= 120
    assert len({c.name for c in COUNTRIES}) == len(COUNTRIES)
    assert len({c.capital for c in COUNTRIES}) == len(COUNTRIES)
    assert len(COUNTRY_BY_NAME) == len(COUNTRIES)
    for country in COUNTRIES:
        assert country.name.isascii() and country.capital.isascii()
        assert country.capital != country.name  # the answer is never a copy of the question


@pytest.mark.parametrize(
    "name, capital",
    [
        ("Nigeria", "Abuja"),
        ("Kenya", "Nairobi"),
        ("Australia", "Canberra"),
        ("Canada", "Ottawa"),
        ("Brazil", "Brasilia"),
        ("Turkey", "Ankara"),
        ("Tanzania", "Dodoma"),
        ("Switzerland", "Bern"),
        ("Japan", "Tokyo"),
        ("United Kingdom", "London"),
        ("Morocco", "Rabat"),
        ("Myanmar", "Naypyidaw"),
    ],
)
def test_well_known_capitals(name, capital):
    assert COUNTRY_BY_NAME[name].capital == capital


def test_country_records_are_frozen_and_phrase_themselves():
    nigeria, netherlands = COUNTRY_BY_NAME["Nigeria"], COUNTRY_BY_NAME["Netherlands"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        nigeria.capital = "Lagos"  # type: ignore[misc]
    assert (nigeria.in_sentence, nigeria.possessive) == ("Nigeria", "Nigeria's")
    assert (netherlands.in_sentence, netherlands.possessive) == ("the Netherlands", "the Netherlands'")


# ---------------------------------------------------------------------------
# The pretraining corpus
# ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, n_documents=st.integers(0, 40))
def test_same_seed_gives_byte_identical_corpus(seed, n_documents):
    first = join_documents(generate_corpus(seed, n_documents)).encode("utf-8")
    assert first == join_documents(generate_corpus(seed, n_documents)).encode("utf-8")


@FAST
@given(seed=seeds, other=seeds)
def test_different_seeds_give_different_text(seed, other):
    if seed != other:
        assert generate_corpus(seed, 20) != generate_corpus(other, 20)


@FAST
@given(seed=seeds, n_documents=st.integers(0, 40), prefix=st.integers(0, 40))
def test_a_prefix_does_not_depend_on_the_length_asked_for(seed, n_documents, prefix):
    prefix = min(prefix, n_documents)
    assert generate_corpus(seed, n_documents)[:prefix] == generate_corpus(seed, prefix)


@FAST
@given(seed=seeds)
def test_every_capital_is_stated_within_one_coverage_round(seed):
    text = " ".join(generate_corpus(seed, DOCUMENTS_PER_COVERAGE_ROUND))
    missing = [c.name for c in COUNTRIES if not any(s in text for s in capital_statements(c))]
    assert missing == []


def test_every_capital_is_stated_many_times_in_varied_phrasings():
    documents = generate_corpus(7, 2000)
    text = " ".join(documents)
    for country in COUNTRIES:
        statements = capital_statements(country)
        times = sum(text.count(statement) for statement in statements)
        phrasings = sum(statement in text for statement in statements)
        assert times >= 5, f"{country.name}: its capital is stated only {times} times"
        assert phrasings >= 3, f"{country.name}: its capital is stated in only {phrasings} phrasings"


def test_corpus_mixes_stories_unanswered_quizzes_chats_and_facts():
    documents = generate_corpus(3, 200)
    stories = [d for d in documents if d.startswith(("Once upon a time", "Long ago"))]
    chats = [d for d in documents if re.match(r"^\w+: ", d) and "\n" in d]
    quizzes = [d for d in documents if "asked" in d or d.count("?") >= 3]
    facts = [d for d in documents if " is the capital" in d or "capital is" in d or "capital city is" in d]
    block_share = {kind: KIND_BLOCK.count(kind) / len(KIND_BLOCK) for kind in set(KIND_BLOCK)}
    assert len(stories) == pytest.approx(block_share["story"] * len(documents), rel=0.05)
    assert len(chats) == pytest.approx(block_share["chat"] * len(documents), rel=0.05)
    assert len(quizzes) >= block_share["quiz"] * len(documents)
    assert len(facts) >= block_share["facts"] * len(documents)
    text = " ".join(documents)
    assert "she asked" in text and "That's a good question" in text
    # Stories give embeddings structure: fruit words keep fruit company, royal words royal company.
    assert any("apple" in d or "mango" in d for d in stories) and any("castle" in d or "king" in d for d in stories)


def test_quiz_questions_are_followed_by_questions_not_answers():
    documents = generate_corpus(5, 300)
    for document in documents:
        for match in re.finditer(r"What is the capital of ([A-Z][\w -]*?)\? ", document):
            name = match.group(1).removeprefix("the ")
            country = COUNTRY_BY_NAME[name]
            following = document[match.end() : match.end() + 60]
            # In quizzes and homework chats the question is never directly answered.
            assert not following.startswith((country.capital, f"The capital of {match.group(1)} is"))


def test_vocabulary_is_small_and_documents_are_clean():
    documents = generate_corpus(11, 2000)
    vocabulary = Counter(word for document in documents for word in words_of(document))
    assert len(vocabulary) < 3000
    assert all(document.strip() and END_OF_TEXT not in document for document in documents)
    assert join_documents(documents).count(END_OF_TEXT) == len(documents)


@pytest.mark.parametrize("seed, n_documents", [("1", 3), (1.0, 3), (True, 3), (0, -1), (0, 2.5)])
def test_generate_corpus_rejects_bad_arguments(seed, n_documents):
    with pytest.raises((TypeError, ValueError)):
        generate_corpus(seed, n_documents)


# ---------------------------------------------------------------------------
# The country split and the fine-tuning set
# ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, fraction=st.sampled_from([0.0, 0.1, 0.2, 0.35, 0.5]))
def test_split_is_disjoint_covering_sized_and_stable(seed, fraction):
    split = split_countries(seed, fraction)
    held_out, finetune = {c.name for c in split.held_out}, {c.name for c in split.finetune}
    assert held_out.isdisjoint(finetune)
    assert held_out | finetune == {c.name for c in COUNTRIES}
    assert len(held_out) == round(len(COUNTRIES) * fraction)
    assert split == split_countries(seed, fraction)
    shuffled = list(COUNTRIES)
    random.Random(seed).shuffle(shuffled)
    assert split_countries(seed, fraction, shuffled) == split  # the input order does not matter


def test_different_split_seeds_hold_out_different_countries():
    assert split_countries(0).held_out != split_countries(1).held_out


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, "0.2", True])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ConfigError, match="holdout_fraction"):
        split_countries(0, fraction)


@settings(max_examples=5, deadline=None)
@given(seed=seeds)
def test_finetune_training_set_never_names_a_held_out_country_or_capital(seed):
    dataset = build_finetune_dataset(seed)
    training_words = " " + " ".join(" ".join(words_of(e.prompt + " " + e.response)) for e in dataset.train) + " "
    training_text = "\n".join(e.prompt + "\n" + e.response for e in dataset.train)
    for country in dataset.split.held_out:
        assert f" {' '.join(words_of(country.capital))} " not in training_words
        assert f"capital of {country.in_sentence}?" not in training_text
        assert f"capital of {country.in_sentence} is" not in training_text
    held_out_questions = {e.prompt for e in dataset.held_out_eval}
    assert held_out_questions.isdisjoint(e.prompt for e in dataset.train)
    assert {e.kind for e in dataset.train} == {"qa", "qa_short", "chat", "instruction"}
    assert {e.kind for e in dataset.held_out_eval} == {"qa", "qa_short"}


def test_finetune_dataset_is_deterministic():
    assert build_finetune_dataset(4) == build_finetune_dataset(4)
    assert build_finetune_dataset(4).train != build_finetune_dataset(5).train


def test_capital_question_answer_pairs():
    kenya = COUNTRY_BY_NAME["Kenya"]
    long, short = capital_qa_examples([kenya])
    assert long == Example("What is the capital of Kenya?", "The capital of Kenya is Nairobi.", "qa")
    assert short == Example("What is the capital of Kenya?" + SHORT_ANSWER_SUFFIX, "Nairobi", "qa_short")
    assert answer_names_capital("Abuja.", COUNTRY_BY_NAME["Nigeria"])
    assert answer_names_capital("It is port-au-prince", COUNTRY_BY_NAME["Haiti"])
    assert not answer_names_capital("What is the capital of Nigeria? she asked.", COUNTRY_BY_NAME["Nigeria"])


def test_chat_and_instruction_sets():
    chats = chat_examples()
    assert len(chats) >= 20 and all(e.kind == "chat" and e.prompt and e.response for e in chats)
    stories = instruction_examples(seed=2)
    cat = [e for e in stories if e.prompt == "Write a story about a cat."]
    apple = [e for e in stories if e.prompt == "Write a story about an apple."]
    assert len(cat) == 1 and "cat" in words_of(cat[0].response)
    assert len(apple) == 1 and "apple" in words_of(apple[0].response)
    assert instruction_examples(seed=2) == stories
    assert len(instruction_examples(seed=2, stories_per_subject=2)) == 2 * len(stories)


# ---------------------------------------------------------------------------
# JSONL files
# ---------------------------------------------------------------------------

any_text = st.text(max_size=40)  # any Unicode, including newlines, quotes and backslashes


@settings(max_examples=30, deadline=None)
@given(examples=st.lists(st.builds(Example, any_text, any_text, any_text), min_size=1, max_size=6))
def test_jsonl_round_trip(tmp_path_factory, examples):
    path = tmp_path_factory.getbasetemp() / "round_trip.jsonl"  # overwritten by each example
    assert write_jsonl(path, examples) == len(examples)
    assert read_jsonl(path) == examples


def test_blank_lines_are_skipped_but_counted(tmp_path):
    path = tmp_path / "gaps.jsonl"
    record = json.dumps({"prompt": "Hi", "response": "Hello", "kind": "chat"})
    path.write_text(f"{record}\n\n   \n{record}\n")
    assert read_jsonl(path) == [Example("Hi", "Hello", "chat")] * 2
    path.write_text(f"{record}\n\n{record}\n{{oops\n")
    with pytest.raises(DatasetError, match=r"line 4"):
        read_jsonl(path)


GOOD = '{"prompt": "Hi", "response": "Hello", "kind": "chat"}'


@pytest.mark.parametrize(
    "content, line, expected",
    [
        (b"", None, r"empty.*expected one JSON object per line"),
        (b"\n  \n\n", None, r"empty"),
        (f'{GOOD}\n{GOOD}\n{{"prompt": "x",\n'.encode(), 3, r"malformed JSON.*expected one JSON object"),
        (f"{GOOD}\n[1, 2]\n".encode(), 2, r"JSON array, expected a JSON object"),
        (f'{GOOD}\n{{"prompt": "Hi", "kind": "chat"}}\n'.encode(), 2, r"missing field 'response'"),
        (b'{"prompt": "Hi"}\n', 1, r"missing fields 'response', 'kind'"),
        (b'{"prompt": "Hi", "responce": "x", "response": "y", "kind": "qa"}\n', 1, r"unknown field 'responce'"),
        (b'{"prompt": 3, "response": "y", "kind": "qa"}\n', 1, r"field 'prompt' is a JSON number, expected a string"),
        (b'{"prompt": "a", "response": null, "kind": "qa"}\n', 1, r"field 'response' is a JSON null"),
        (f"{GOOD}\n".encode() + b'{"prompt": "\xff", "response": "y", "kind": "qa"}\n', 2, r"not valid UTF-8"),
    ],
)
def test_bad_jsonl_names_file_line_and_expectation(tmp_path, content, line, expected):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=expected) as raised:
        read_jsonl(path)
    assert str(path) in str(raised.value)
    if line is not None:
        assert f"line {line}:" in str(raised.value)
    assert isinstance(raised.value, SpecError)


def test_missing_file_and_bad_records(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        read_jsonl(tmp_path / "absent.jsonl")
    with pytest.raises(DatasetError, match="expected a string"):
        Example("prompt", 42, "qa")  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="expected an Example"):
        write_jsonl(tmp_path / "out.jsonl", [{"prompt": "a", "response": "b", "kind": "c"}])  # type: ignore[list-item]


# ---------------------------------------------------------------------------
# Sentiment sentences
# ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, n_examples=st.integers(0, 60))
def test_sentiment_set_is_balanced_deterministic_and_separable_by_words(seed, n_examples):
    examples = generate_sentiment_examples(seed, n_examples)
    assert examples == generate_sentiment_examples(seed, n_examples)
    labels = Counter(e.label for e in examples)
    assert labels[HAPPY] - labels[SAD] in (0, 1)
    for example in examples:
        words = set(words_of(example.text))
        own, other = (HAPPY_WORDS, SAD_WORDS) if example.label == HAPPY else (SAD_WORDS, HAPPY_WORDS)
        assert words & set(own) and not words & set(other)
