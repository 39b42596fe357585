"""Fine-tuning data: question/answer, chat and instruction examples, and JSONL files of them.

The experiment this supports (from the source material): a model pretrained on
:mod:`transformer_spec.data.corpus` continues "What is the capital of Nigeria?" with more
questions; fine-tuning on question/answer pairs makes it answer "Abuja". To
show that fine-tuning teaches the *habit of answering* rather than the facts,
:func:`split_countries` holds some countries out: their capitals appear only
in the pretraining corpus (which states every capital many times), never in a
fine-tuning example, and the held-out questions are the evaluation set.

Every example is an :class:`Example` ``(prompt, response, kind)``. Kinds:

``qa``        "What is the capital of Kenya?" → "The capital of Kenya is Nairobi."
``qa_short``  "What is the capital of Kenya? Answer in one word." → "Nairobi"
              (its own prompt, so the two kinds never give one prompt two answers)
``chat``      "Hello!" → "Hi! How can I help you today?"
``instruction`` "Write a story about a cat." → a short story
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from transformer_spec.spec.errors import ConfigError, SpecError

from .corpus import ANIMALS, FRUITS, ROYALS, generate_story, with_article
from .countries import COUNTRIES, Country

EXAMPLE_KINDS = ("qa", "qa_short", "chat", "instruction")


class DatasetError(SpecError):
    """A dataset file or record is malformed; the message names the file, the line and what was expected."""


@dataclass(frozen=True)
class Example:
    """One fine-tuning pair: the model sees ``prompt`` and learns to produce ``response``."""

    prompt: str  # what the user says
    response: str  # what the model should answer
    kind: str  # "qa", "qa_short", "chat", "instruction" (free text is allowed for other sets)

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, str):
                raise DatasetError(f"Example: {field.name} = {value!r} is a {type(value).__name__}, expected a string")


EXAMPLE_FIELDS = tuple(field.name for field in fields(Example))


# ---------------------------------------------------------------------------
# Countries: the split and the question/answer pairs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CountrySplit:
    """Countries whose capitals fine-tuning may show, and those it holds out (disjoint, covering all)."""

    finetune: tuple[Country, ...]  # sorted by name
    held_out: tuple[Country, ...]  # sorted by name; evaluated only
    seed: int
    holdout_fraction: float


def split_countries(seed: int, holdout_fraction: float = 0.2, countries: Sequence[Country] = COUNTRIES) -> CountrySplit:
    """Yields a seeded split of ``countries``: ``round(len * holdout_fraction)`` held out, the rest for fine-tuning.

    The split depends only on ``seed``, ``holdout_fraction`` and the set of
    country names (not their order), so it is stable across runs and machines.
    """
    if (
        isinstance(holdout_fraction, bool)
        or not isinstance(holdout_fraction, (int, float))
        or not (0.0 <= holdout_fraction < 1.0)
    ):
        raise ConfigError(f"split_countries: holdout_fraction = {holdout_fraction!r}, expected a number in [0, 1)")
    ordered = sorted(countries, key=lambda country: country.name)
    shuffled = ordered[:]
    random.Random(f"split:{seed}").shuffle(shuffled)
    n_held_out = round(len(ordered) * holdout_fraction)
    held_out = sorted(shuffled[:n_held_out], key=lambda country: country.name)
    finetune = sorted(shuffled[n_held_out:], key=lambda country: country.name)
    return CountrySplit(tuple(finetune), tuple(held_out), seed, float(holdout_fraction))


def capital_question(country: Country) -> str:
    """Yields the canonical question: "What is the capital of Kenya?"."""
    return f"What is the capital of {country.in_sentence}?"


SHORT_ANSWER_SUFFIX = " Answer in one word."  # marks a qa_short prompt; a capital may still be two words


def capital_qa_examples(countries: Iterable[Country]) -> list[Example]:
    """Yields, per country, a full-sentence ``qa`` example and a one-word ``qa_short`` example."""
    examples = []
    for country in countries:
        question = capital_question(country)
        examples.append(Example(question, f"The capital of {country.in_sentence} is {country.capital}.", "qa"))
        examples.append(Example(question + SHORT_ANSWER_SUFFIX, country.capital, "qa_short"))
    return examples


def answer_names_capital(response: str, country: Country) -> bool:
    """Yields whether ``response`` names ``country``'s capital: its words, in order, as whole words (any case)."""
    words = re.findall(r"\w+", response.lower())
    capital = re.findall(r"\w+", country.capital.lower())
    return any(words[i : i + len(capital)] == capital for i in range(len(words) - len(capital) + 1))


# ---------------------------------------------------------------------------
# Chat and instructions
# ---------------------------------------------------------------------------

CHAT_PAIRS: tuple[tuple[str, str], ...] = (
    ("Hello!", "Hi! How can I help you today?"),
    ("Hi!", "Hello! What would you like to talk about?"),
    ("Hey there!", "Hey! It is nice to hear from you."),
    ("Good morning!", "Good morning! I hope you have a wonderful day."),
    ("Good evening!", "Good evening! How was your day?"),
    ("Good night!", "Good night! Sleep well."),
    ("How are you?", "I am fine, thank you. How are you?"),
    ("How are you today?", "I am doing well, thanks for asking!"),
    ("What is your name?", "I am a small language model. You can call me Spec."),
    ("Who are you?", "I am a small language model trained to answer questions."),
    ("Thank you!", "You are welcome!"),
    ("Thanks for your help.", "I am glad I could help."),
    ("Goodbye!", "Goodbye! Have a nice day."),
    ("Bye!", "Bye! Talk to you soon."),
    ("See you later!", "See you later!"),
    ("I am sad.", "I am sorry to hear that. Do you want to talk about it?"),
    ("I am happy today!", "That is great! I am happy for you."),
    ("I am bored.", "Why not read a story or go for a walk?"),
    ("Can you help me?", "Of course! What do you need?"),
    ("Tell me a joke.", "Why did the banana go to the doctor? Because it was not peeling well."),
    ("What can you do?", "I can answer questions, chat and write short stories."),
    ("Do you like fruit?", "I do not eat, but many people love apples and mangoes."),
    ("Nice to meet you.", "Nice to meet you too!"),
    ("Are you there?", "Yes, I am here. How can I help?"),
)


def chat_examples() -> list[Example]:
    """Yields one ``chat`` example per pair in :data:`CHAT_PAIRS`."""
    return [Example(prompt, response, "chat") for prompt, response in CHAT_PAIRS]


STORY_SUBJECTS: tuple[str, ...] = tuple(ANIMALS) + tuple(FRUITS) + tuple(ROYALS) + ("kite", "ball", "book", "boat")


def instruction_examples(seed: int, stories_per_subject: int = 1) -> list[Example]:
    """Yields "Write a story about a cat." → story examples, ``stories_per_subject`` per subject.

    Each story comes from :func:`transformer_spec.data.corpus.generate_story` with a seed
    derived from ``seed``, the subject and the repeat index, so the set is
    deterministic and two subjects never share a random stream.
    """
    if isinstance(stories_per_subject, bool) or not isinstance(stories_per_subject, int) or stories_per_subject < 0:
        raise ConfigError(f"instruction_examples: stories_per_subject = {stories_per_subject!r}, expected an int >= 0")
    examples = []
    for subject in STORY_SUBJECTS:
        for repeat in range(stories_per_subject):
            story_seed = random.Random(f"story:{seed}:{subject}:{repeat}").getrandbits(63)
            prompt = f"Write a story about {with_article(subject)}."
            examples.append(Example(prompt, generate_story(story_seed, subject), "instruction"))
    return examples


# ---------------------------------------------------------------------------
# The whole fine-tuning set
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneDataset:
    """Training examples (no held-out capital anywhere in them) and the held-out evaluation questions."""

    train: tuple[Example, ...]  # qa + qa_short for split.finetune, chat, instruction; seeded order
    held_out_eval: tuple[Example, ...]  # qa + qa_short for split.held_out
    split: CountrySplit


def build_finetune_dataset(seed: int, holdout_fraction: float = 0.2, stories_per_subject: int = 1) -> FinetuneDataset:
    """Yields the fine-tuning set for ``seed``: a shuffled training list and the held-out questions.

    Instruction stories are generated text, so one could by chance mention a
    held-out country; such stories are dropped so that held-out capitals reach
    the model only through pretraining.
    """
    split = split_countries(seed, holdout_fraction)
    stories = [
        example
        for example in instruction_examples(seed, stories_per_subject)
        if not any(answer_names_capital(example.response, country) for country in split.held_out)
    ]
    train = capital_qa_examples(split.finetune) + chat_examples() + stories
    random.Random(f"order:{seed}").shuffle(train)
    return FinetuneDataset(tuple(train), tuple(capital_qa_examples(split.held_out)), split)


# ---------------------------------------------------------------------------
# JSONL files
# ---------------------------------------------------------------------------


def write_jsonl(path: str | os.PathLike[str], examples: Iterable[Example]) -> int:
    """Writes one JSON object per line (fields prompt, response, kind; UTF-8). Yields the number written."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        for example in examples:
            if not isinstance(example, Example):
                raise DatasetError(f"write_jsonl: item {count} is a {type(example).__name__}, expected an Example")
            file.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")
            count += 1
    return count


_EXPECTED_LINE = '{"prompt": "...", "response": "...", "kind": "..."}'


def read_jsonl(path: str | os.PathLike[str]) -> list[Example]:
    """Yields the examples in a JSONL file written by :func:`write_jsonl` (or by hand).

    Lines holding only whitespace are skipped; every other line must be a JSON
    object with exactly the string fields prompt, response and kind. Anything
    else raises :class:`DatasetError` naming the file, the 1-based line number
    and what was expected. A file with no records is an error too, since
    training on nothing is never what was meant.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file; expected a JSONL file of examples") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory; expected a JSONL file of examples") from None
    examples: list[Example] = []
    for line_number, raw_line in enumerate(raw.split(b"\n"), start=1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DatasetError(
                f"{path}, line {line_number}: not valid UTF-8 (byte {error.start + 1}); expected UTF-8 text"
            ) from None
        if not line.strip():
            continue
        examples.append(_parse_example_line(line, path, line_number))
    if not examples:
        raise DatasetError(f"{path}: the file is empty (no records); expected one JSON object per line like {_EXPECTED_LINE}")
    return examples


def _parse_example_line(line: str, path: Path, line_number: int) -> Example:
    """Yields the Example on one non-blank JSONL line, or raises DatasetError saying what is wrong."""
    where = f"{path}, line {line_number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{where}: malformed JSON ({error.msg} at column {error.colno}); "
            f"expected one JSON object per line like {_EXPECTED_LINE}"
        ) from None
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: a JSON {_json_type_name(record)}, expected a JSON object like {_EXPECTED_LINE}")
    missing = [name for name in EXAMPLE_FIELDS if name not in record]
    if missing:
        raise DatasetError(
            f"{where}: missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
            f"expected the fields {', '.join(EXAMPLE_FIELDS)}"
        )
    unknown = sorted(name for name in record if name not in EXAMPLE_FIELDS)
    if unknown:
        raise DatasetError(
            f"{where}: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"expected exactly the fields {', '.join(EXAMPLE_FIELDS)} (check the spelling)"
        )
    for name in EXAMPLE_FIELDS:
        if not isinstance(record[name], str):
            raise DatasetError(f"{where}: field {name!r} is a JSON {_json_type_name(record[name])}, expected a string")
    return Example(**{name: record[name] for name in EXAMPLE_FIELDS})


def _json_type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
