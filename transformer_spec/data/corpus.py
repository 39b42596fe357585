"""A seeded generator of small "general text" for pretraining.

The source material's story needs a corpus in which a model learns language and
facts but NOT the habit of answering questions: after pretraining on it, a
model asked "What is the capital of Nigeria?" continues with another quiz
question, "she asked", or "that's a good question". The corpus therefore mixes
four kinds of document:

``story``
    "Once upon a time ..." stories with a small cast. Each story has a theme
    (animals in the forest, fruit in the garden or market, kings and castles,
    children at school or the park, a trip to a capital city), and each theme
    draws its nouns from its own pool, so word embeddings trained on the corpus
    have structure to find (fruits near fruits, castles near kings).
``quiz``
    Lists of questions, each followed by another question or a reply that does
    not answer it ("she asked", "That's a good question.").
``chat``
    Short dialogues between two named speakers, one line per turn.
``facts``
    Plain statements of facts, mostly countries and their capitals in many
    phrasings ("Abuja is the capital of Nigeria.", "Nigeria's capital city is
    Abuja.", ...), plus a few general facts.

Guarantees, relied on by fine-tuning experiments and tested:

* Same ``seed`` and ``n_documents`` → byte-identical documents. Only a
  ``random.Random(seed)`` is used; nothing reads the clock, the hash seed or
  global random state.
* A prefix is stable: ``generate_corpus(s, n)[:m] == generate_corpus(s, m)``.
* Every country's capital is stated, in a "facts" document, at least once in
  every :data:`DOCUMENTS_PER_COVERAGE_ROUND` consecutive documents from the
  start — so a corpus of 20 000 documents states each capital well over a
  hundred times, in varied phrasings, for every country in
  :data:`~transformer_spec.data.countries.COUNTRIES` (including the countries fine-tuning
  holds out).
* The vocabulary is small (well under 3 000 distinct lower-cased words), so a
  word-level or small BPE tokenizer covers it.
* No document contains :data:`END_OF_TEXT`; a trainer joins documents with it
  (see :func:`join_documents`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .countries import COUNTRIES, Country

END_OF_TEXT = "<|endoftext|>"  # the GPT-2 document separator; never produced inside a document


# ---------------------------------------------------------------------------
# The cast and the word pools
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A named character and the pronouns used for them."""

    name: str
    subject: str  # "she" / "he"
    object: str  # "her" / "him"
    possessive: str  # "her" / "his"


def _people(names: str, subject: str, object_: str, possessive: str) -> tuple[Person, ...]:
    return tuple(Person(name, subject, object_, possessive) for name in names.split())


PEOPLE: tuple[Person, ...] = _people(
    "Mia Lily Anna Zoe Emma Lucy Ella Ruby Sara Amara Mei Nora Ada Lena Aisha", "she", "her", "her"
) + _people("Tom Sam Ben Max Leo Jack Noah Finn Omar Kofi Ravi Ivan Hugo Tariq Juan", "he", "him", "his")

ANIMALS = (
    "cat dog rabbit fox bear mouse bird duck frog owl horse lion tiger elephant monkey "
    "turtle squirrel deer wolf pig cow sheep goat hen puppy kitten"
).split()
FRUITS = ("apple banana orange pear grape mango cherry peach plum lemon strawberry melon pineapple apricot kiwi coconut").split()
ROYALS = "king queen prince princess knight wizard dragon giant".split()
ROYAL_THINGS = "crown sword shield throne ring cloak map key treasure chest flag".split()
ROYAL_PLACES = "castle palace tower kingdom mountain bridge court".split()
NATURE_PLACES = "forest meadow river pond hill field farm cave lake valley".split()
GARDEN_PLACES = "garden market orchard kitchen farm".split()
TOWN_PLACES = "school park library beach playground museum zoo".split()
TOYS = "ball kite hat box stick leaf feather shell stone rope bell drum blanket boat book bike".split()
ADJECTIVES = (
    "little big small brave kind curious sleepy clever shy funny old young gentle proud tiny quiet silly wise "
    "friendly hungry busy"
).split()
COLOURS = "red blue green yellow purple white black brown pink golden silver".split()
FRUIT_WORDS = "sweet juicy ripe fresh round soft".split()
FEELINGS_GOOD = "happy glad excited proud cheerful".split()
FEELINGS_BAD = "sad scared worried tired lonely".split()
OPENINGS = (
    "One day",
    "One sunny morning",
    "One rainy afternoon",
    "Early one morning",
    "One cold winter night",
    "Later that day",
    "In the evening",
    "The next day",
    "After lunch",
    "On a windy day",
)
NUMBER_WORDS = "one two three four five six seven eight nine ten".split()


def with_article(noun_phrase: str) -> str:
    """Yields the phrase with its indefinite article: "an apple", "a banana" (chosen by the first letter).

    Every word in the pools above starts with a letter whose sound matches its
    spelling, so the letter rule is exact here.
    """
    return ("an " if noun_phrase[0].lower() in "aeiou" else "a ") + noun_phrase


def _plural(noun: str) -> str:
    """ "cherries", "peaches", "apples": the English plural of a pool noun."""
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("ch", "sh", "s", "x")) or noun == "mango":
        return noun + "es"
    return noun + "s"


def _capitalise(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


# ---------------------------------------------------------------------------
# General trivia: questions asked in quizzes, facts stated in fact sheets
# ---------------------------------------------------------------------------

TRIVIA_QUESTIONS = (
    "What is the largest ocean?",
    "What is the tallest mountain in the world?",
    "How many legs does a spider have?",
    "What color is the sky?",
    "Which planet is closest to the sun?",
    "What is the longest river in Africa?",
    "How many days are in a week?",
    "What do bees make?",
    "What is the largest animal on land?",
    "What is the biggest country in the world?",
    "What is frozen water called?",
    "Which fruit is long and yellow?",
    "How many continents are there?",
    "What is the largest planet?",
    "How many legs does an insect have?",
    "What do cows drink?",
    "Which animal is known as the king of the jungle?",
    "What is the hottest planet?",
    "How many hours are in a day?",
    "What is the smallest continent?",
)

GENERAL_FACTS = (
    "The Pacific Ocean is the largest ocean.",
    "Mount Everest is the tallest mountain in the world.",
    "A spider has eight legs.",
    "The sky is blue on a clear day.",
    "Mercury is the planet closest to the sun.",
    "The Nile is the longest river in Africa.",
    "There are seven days in a week.",
    "Bees make honey.",
    "The elephant is the largest animal on land.",
    "Russia is the biggest country in the world.",
    "Frozen water is called ice.",
    "A banana is long and yellow.",
    "There are seven continents.",
    "Jupiter is the largest planet.",
    "An insect has six legs.",
    "Venus is the hottest planet.",
    "There are twenty four hours in a day.",
    "Australia is the smallest continent.",
)


def _capital_question(country: Country, rng: random.Random) -> str:
    """A question asking for a country's capital, in one of a few phrasings."""
    return rng.choice(
        (
            f"What is the capital of {country.in_sentence}?",
            f"What is the capital of {country.in_sentence}?",  # the canonical form, twice as likely
            f"What is the capital city of {country.in_sentence}?",
            f"Which city is the capital of {country.in_sentence}?",
            f"Do you know the capital of {country.in_sentence}?",
            f"Can you name the capital of {country.in_sentence}?",
            f"In which continent is {country.in_sentence}?",
            f"Which country has {country.capital} as its capital?",
        )
    )


def capital_statements(country: Country) -> tuple[str, ...]:
    """Every phrasing the corpus uses to state ``country``'s capital, one sentence each (or two)."""
    name, capital = country.in_sentence, country.capital
    return (
        f"{capital} is the capital of {name}.",
        f"The capital of {name} is {capital}.",
        f"{_capitalise(country.possessive)} capital city is {capital}.",
        f"{_capitalise(country.possessive)} capital is {capital}.",
        f"The capital city of {name} is {capital}.",
        f"{capital} is the capital city of {name}.",
        f"{capital}, the capital of {name}, is a busy city.",
        f"{_capitalise(name)} is a country in {country.continent}. Its capital is {capital}.",
        f"If you visit {name}, you may go to {capital}, its capital.",
        f"The government of {name} meets in {capital}, the capital.",
        f"In {name}, the capital is {capital}.",
        f"Did you know? {capital} is the capital of {name}.",
        f"{capital} is in {name}. It is the capital.",
        f"The capital of {name}? It is {capital}.",
    )


def continent_statements(country: Country) -> tuple[str, ...]:
    """Phrasings that place ``country`` on its continent."""
    name = country.in_sentence
    return (
        f"{_capitalise(name)} is in {country.continent}.",
        f"{_capitalise(name)} is a country in {country.continent}.",
        f"You can find {name} in {country.continent}.",
    )


# ---------------------------------------------------------------------------
# The writer: one method per document kind
# ---------------------------------------------------------------------------

DOCUMENT_KINDS = ("story", "quiz", "chat", "facts")

# Each consecutive block of this many documents holds these kinds, in a seeded
# order. A fixed block (rather than independent draws) keeps the mix exact and
# bounds how long any kind, in particular "facts", can be absent.
KIND_BLOCK: tuple[str, ...] = ("story",) * 4 + ("quiz",) * 2 + ("chat",) * 1 + ("facts",) * 3
MIN_COUNTRIES_PER_FACTS_DOCUMENT = 4  # a facts document covers 4 to 6 countries from the deck
MAX_COUNTRIES_PER_FACTS_DOCUMENT = 6

# Facts documents deal countries from a shuffled deck, reshuffled when empty, so
# one pass over the deck (every country) takes at most this many facts documents.
_FACTS_DOCUMENTS_PER_DECK = math.ceil(len(COUNTRIES) / MIN_COUNTRIES_PER_FACTS_DOCUMENT)
_FACTS_PER_BLOCK = KIND_BLOCK.count("facts")
DOCUMENTS_PER_COVERAGE_ROUND = len(KIND_BLOCK) * math.ceil(_FACTS_DOCUMENTS_PER_DECK / _FACTS_PER_BLOCK)
"""Any corpus of at least this many documents states every country's capital at least once."""


class _Deck:
    """Deals items of a pool in seeded shuffled rounds, so every item comes up once per round."""

    def __init__(self, items: Sequence[Country], rng: random.Random) -> None:
        self._items = list(items)
        self._rng = rng
        self._remaining: list[Country] = []

    def deal(self) -> Country:
        if not self._remaining:
            self._remaining = self._items[:]
            self._rng.shuffle(self._remaining)
        return self._remaining.pop()


class _Writer:
    """Writes documents of every kind from one seeded random stream."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.facts_deck = _Deck(COUNTRIES, self.rng)

    # -- small helpers -----------------------------------------------------

    def pick(self, pool: Sequence[str]) -> str:
        return self.rng.choice(pool)

    def two_people(self) -> tuple[Person, Person]:
        first, second = self.rng.sample(PEOPLE, 2)
        return first, second

    def in_order(self, events: Sequence[str], count: int) -> list[str]:
        """``count`` of the events, keeping their story order (so "found" comes before "shared")."""
        chosen = sorted(self.rng.sample(range(len(events)), count))
        return [events[i] for i in chosen]

    def maybe(self, probability: float) -> bool:
        return self.rng.random() < probability

    # -- stories -------------------------------------------------------------

    def story(self, subject: str | None = None) -> str:
        """A short story; ``subject`` (an animal, fruit or royal noun) picks the theme and hero."""
        if subject is not None:
            if subject in ANIMALS:
                return self.animal_story(subject)
            if subject in FRUITS:
                return self.fruit_story(subject)
            if subject in ROYALS:
                return self.royal_story(subject)
            return self.child_story(subject)
        theme = self.rng.choices(("animal", "fruit", "royal", "child", "travel"), weights=(3, 2, 2, 2, 1))[0]
        return getattr(self, f"{theme}_story")()

    def _opening(self, hero_phrase: str, place: str) -> str:
        return self.pick(
            (
                f"Once upon a time, there was {hero_phrase}.",
                f"Once upon a time, in a {place} far away, there lived {hero_phrase}.",
                f"Once upon a time, {hero_phrase} lived near a {place}.",
                f"Long ago, there was {hero_phrase}.",
            )
        )

    def _ending(self, name: str) -> str:
        return self.pick(
            (
                "The end.",
                "And they all lived happily ever after.",
                f"From that day on, {name} was never {self.pick(FEELINGS_BAD)} again.",
                f"{name} smiled and went to sleep.",
                f"It was the best day {name} ever had.",
                "And that is the end of the story.",
            )
        )

    def animal_story(self, animal: str | None = None) -> str:
        animal = animal or self.pick(ANIMALS)
        person = self.pick(PEOPLE)
        hero = f"{self.pick(ADJECTIVES)} {animal}"
        friend_animal = self.pick([a for a in ANIMALS if a != animal])
        place = self.pick(NATURE_PLACES)
        toy = f"{self.pick(COLOURS)} {self.pick(TOYS)}"
        name = person.name
        they = person.subject
        sentences = [self._opening(f"{with_article(hero)} named {name}", place)]
        middle = [
            f"{self.pick(OPENINGS)}, {name} went to the {place} to play.",
            f"{_capitalise(they)} found {with_article(toy)} under a tree.",
            f"{name} met {with_article(friend_animal)} who was very {self.pick(FEELINGS_BAD)}.",
            f'The {friend_animal} said, "I lost my {self.pick(TOYS)}. Can you help me?"',
            f"{name} and the {friend_animal} looked everywhere, near the {self.pick(NATURE_PLACES)} and by the "
            f"{self.pick(NATURE_PLACES)}.",
            f"{_capitalise(they)} ran up the {self.pick(('hill', 'path', 'road', 'tree'))} as fast as {they} could.",
            f"The {friend_animal} was so {self.pick(FEELINGS_GOOD)} that it jumped up and down.",
            f"Then it started to rain, so {name} hid in a {self.pick(('cave', 'box', 'hole', 'barn'))}.",
            f"{name} shared {person.possessive} {toy} with the {friend_animal}.",
            f"They played with the {toy} until the sun went down.",
        ]
        sentences += self.in_order(middle, self.rng.randint(3, 6))
        sentences.append(self._ending(name))
        return " ".join(sentences)

    def fruit_story(self, fruit: str | None = None) -> str:
        fruit = fruit or self.pick(FRUITS)
        other_fruit = self.pick([f for f in FRUITS if f != fruit])
        person, friend = self.two_people()
        place = self.pick(GARDEN_PLACES)
        name, they = person.name, person.subject
        sentences = [
            self.pick(
                (
                    f"Once upon a time, there was a girl named {name}."
                    if they == "she"
                    else f"Once upon a time, there was a boy named {name}.",
                    f"Once upon a time, {name} lived next to a big {place}.",
                    f"Once upon a time, there was {with_article(self.pick(FRUIT_WORDS) + ' ' + fruit)} in a {place}.",
                )
            )
        ]
        middle = [
            f"{self.pick(OPENINGS)}, {name} went to the {place} with a basket.",
            f"{_capitalise(they)} saw {with_article(self.pick(FRUIT_WORDS) + ' ' + fruit)} on a tree.",
            f"{name} picked {with_article(fruit)} and {with_article(other_fruit)}.",
            f"The {fruit} was {self.pick(FRUIT_WORDS)} and {self.pick(FRUIT_WORDS)}.",
            f"{name} gave {with_article(other_fruit)} to {friend.name}.",
            f'{friend.name} said, "Thank you! I love {_plural(fruit)}."',
            f"They made {self.pick(('a pie', 'some juice', 'a salad', 'a cake', 'jam'))} with the {_plural(fruit)}.",
            f"{name} ate the {fruit} and felt {self.pick(FEELINGS_GOOD)}.",
            f"At the {place}, a man was selling {_plural(other_fruit)} and {_plural(fruit)}.",
            f"{name} planted the seeds of the {fruit} in the garden.",
            f"Soon a small {fruit} tree began to grow.",
        ]
        sentences += self.in_order(middle, self.rng.randint(3, 6))
        sentences.append(self._ending(name))
        return " ".join(sentences)

    def royal_story(self, royal: str | None = None) -> str:
        royal = royal or self.pick(ROYALS)
        other = self.pick([r for r in ROYALS if r != royal])
        place = self.pick(ROYAL_PLACES)
        thing = self.pick(ROYAL_THINGS)
        person = self.pick(PEOPLE)
        name = person.name
        hero = f"{self.pick(ADJECTIVES)} {royal}"
        sentences = [self._opening(f"{with_article(hero)} named {name}", place)]
        middle = [
            f"The {royal} lived in a {self.pick(COLOURS)} {self.pick(ROYAL_PLACES)} on a hill.",
            f"{self.pick(OPENINGS)}, the {royal} lost {person.possessive} {thing}.",
            f"{_capitalise(with_article(self.pick(ADJECTIVES) + ' ' + other))} came to the {place}.",
            f'The {other} said, "I will help you find the {thing}."',
            f"They rode a horse across the {self.pick(ROYAL_PLACES)} and over the {self.pick(NATURE_PLACES)}.",
            f"The {royal} sat on the throne and wore a {self.pick(COLOURS)} crown.",
            f"A dragon flew over the {place} and everyone was {self.pick(FEELINGS_BAD)}.",
            f"The knight held up {person.possessive} sword and shield.",
            f"At last they found the {thing} in the {self.pick(ROYAL_PLACES)}.",
            f"The whole kingdom had a party, and the {royal} was {self.pick(FEELINGS_GOOD)}.",
        ]
        sentences += self.in_order(middle, self.rng.randint(3, 6))
        sentences.append(self._ending(name))
        return " ".join(sentences)

    def child_story(self, topic: str | None = None) -> str:
        person, friend = self.two_people()
        place = self.pick(TOWN_PLACES)
        name, they = person.name, person.subject
        toy = topic or self.pick(TOYS)
        kind = "girl" if they == "she" else "boy"
        sentences = [
            self.pick(
                (
                    f"Once upon a time, there was {with_article(self.pick(ADJECTIVES))} {kind} named {name}.",
                    f"Once upon a time, {name} had {with_article(self.pick(COLOURS) + ' ' + toy)}.",
                    f"Once upon a time, {name} and {friend.name} were best friends.",
                )
            )
        ]
        middle = [
            f"{self.pick(OPENINGS)}, {name} and {friend.name} went to the {place}.",
            f"{_capitalise(they)} brought {person.possessive} {toy} with {person.object}.",
            f"At the {place}, they saw {with_article(self.pick(ANIMALS))} and {with_article(self.pick(ANIMALS))}.",
            f"{friend.name} felt {self.pick(FEELINGS_BAD)}, so {name} told {friend.object} a joke.",
            f'{friend.name} laughed and said, "You are a good friend."',
            f"The teacher read them a book about {with_article(self.pick(ROYALS))}.",
            f"{name} ate {with_article(self.pick(FRUITS))} for lunch.",
            f"They played with the {toy} all afternoon.",
            f"When it was time to go home, {name} said goodbye to {friend.name}.",
            f"{name} told {person.possessive} mom about the {place}, and she was {self.pick(FEELINGS_GOOD)}.",
        ]
        sentences += self.in_order(middle, self.rng.randint(3, 6))
        sentences.append(self._ending(name))
        return " ".join(sentences)

    def travel_story(self) -> str:
        person, friend = self.two_people()
        country = self.rng.choice(COUNTRIES)
        name, they = person.name, person.subject
        sentences = [
            self.pick(
                (
                    f"Once upon a time, {name} went on a trip to {country.in_sentence}.",
                    f"Once upon a time, {name} wanted to see {country.capital}.",
                    f"Long ago, a traveler named {name} set off for {country.in_sentence}.",
                )
            )
        ]
        middle = [
            f"{_capitalise(they)} took a plane to {country.capital}, the capital of {country.in_sentence}.",
            f"In {country.capital}, {name} visited a {self.pick(('museum', 'market', 'park', 'library'))}.",
            f"{name} bought {with_article(self.pick(FRUITS))} at the market.",
            f'{name} sent a letter to {friend.name}: "I am in {country.capital}! It is the capital of {country.in_sentence}."',
            f"The people in {country.capital} were very {self.pick(('kind', 'friendly', 'busy', 'nice'))}.",
            f"{name} saw {with_article(self.pick(ANIMALS))} near the {self.pick(NATURE_PLACES)}.",
            f"After many days, {name} flew home to tell {friend.name} about {country.in_sentence}.",
        ]
        sentences += self.in_order(middle, self.rng.randint(3, 5))
        sentences.append(self._ending(name))
        return " ".join(sentences)

    # -- quizzes -------------------------------------------------------------

    def question(self) -> str:
        if self.maybe(0.6):
            return _capital_question(self.rng.choice(COUNTRIES), self.rng)
        return self.pick(TRIVIA_QUESTIONS)

    def quiz(self) -> str:
        """Questions followed by more questions, never by their answers."""
        count = self.rng.randint(3, 6)
        questions = [self.question() for _ in range(count)]
        style = self.rng.randrange(4)
        if style == 0:
            return " ".join(questions)
        if style == 1:
            header = self.pick(("Quiz time!", "Here is a quiz.", "Geography quiz.", "Test your knowledge."))
            return header + " " + " ".join(f"Question {NUMBER_WORDS[i]}: {q}" for i, q in enumerate(questions))
        if style == 2:
            teacher = self.pick(PEOPLE)
            return (
                f"The teacher, {teacher.name}, asked the class {NUMBER_WORDS[count - 1]} questions. "
                + " ".join(questions)
                + " "
                + self.pick(("Write your answers on the board.", "You have ten minutes.", "Good luck!"))
            )
        return self._question_dialogue(questions)

    def _question_dialogue(self, questions: list[str]) -> str:
        """ "What is the capital of Kenya?" she asked. "That's a good question," he said. ..."""
        first, second = self.two_people()
        lines = []
        asker, other = first, second
        for question in questions:
            lines.append(f'"{question}" {asker.subject} asked.')
            reply = self.pick(
                (
                    f'"That\'s a good question," said {other.name}.',
                    f'"That\'s a good question," {other.subject} said.',
                    f'"Hmm, let me think," said {other.name}.',
                    f'"I am not sure," said {other.name}.',
                    f"{other.name} did not know.",
                    "",  # the next question follows with no reply at all
                )
            )
            if reply:
                lines.append(reply)
            asker, other = other, asker
        return " ".join(lines)

    # -- chat ----------------------------------------------------------------

    def chat(self) -> str:
        """A short dialogue, one ``Name: text`` line per turn."""
        a, b = self.two_people()
        topic = self.rng.randrange(5)
        turns: list[tuple[Person, str]] = [
            (a, self.pick((f"Hi {b.name}!", f"Hello {b.name}!", f"Good morning, {b.name}!", "Hey!"))),
            (b, self.pick(("Hi! How are you?", "Hello! How are you today?", "Hey, how is it going?"))),
            (
                a,
                self.pick(
                    (
                        "I am fine, thank you. And you?",
                        "I am good, thanks! How about you?",
                        f"I am a bit {self.pick(FEELINGS_BAD)} today.",
                        "Great, thanks for asking!",
                    )
                ),
            ),
        ]
        if topic == 0:
            turns += [
                (b, f"I am {self.pick(FEELINGS_GOOD)}. The weather is {self.pick(('sunny', 'nice', 'warm'))} today."),
                (a, self.pick(("Let's go to the park!", "Do you want to play outside?", "Let's fly a kite."))),
                (b, self.pick(("Good idea!", "Yes, let's go!", "Maybe later."))),
            ]
        elif topic == 1:
            fruit, other = self.rng.sample(FRUITS, 2)
            turns += [
                (b, f"I am hungry. Do you have {with_article(fruit)}?"),
                (a, f"No, but I have {with_article(other)}. Do you want it?"),
                (b, f"Yes, please! I love {_plural(other)}."),
            ]
        elif topic == 2:
            animal = self.pick(ANIMALS)
            turns += [
                (b, f"I got a new pet. It is {with_article(self.pick(ADJECTIVES) + ' ' + animal)}."),
                (a, "Wow! What is its name?"),
                (b, f"Its name is {self.pick(PEOPLE).name}."),
            ]
        elif topic == 3:
            country = self.rng.choice(COUNTRIES)
            turns += [
                (b, f"I just came back from {country.capital}."),
                (a, self.pick((f"Is that in {country.in_sentence}?", "Where is that?", "How was it?"))),
                (
                    b,
                    self.pick(
                        (
                            f"Yes, {country.capital} is the capital of {country.in_sentence}.",
                            f"It is the capital of {country.in_sentence}. It was fun!",
                        )
                    ),
                ),
            ]
        else:
            country = self.rng.choice(COUNTRIES)
            turns += [
                (b, f"Can you help me with my homework? What is the capital of {country.in_sentence}?"),
                (
                    a,
                    self.pick(
                        (
                            "That's a good question.",
                            "Hmm, I don't know. Let's ask the teacher.",
                            f"Good question. What is the capital of {self.rng.choice(COUNTRIES).in_sentence}?",
                        )
                    ),
                ),
                (b, self.pick(("Let's look it up in a book.", "I will ask my dad.", "Okay, thanks anyway!"))),
            ]
        if self.maybe(0.5):
            turns.append((a, self.pick(("See you later!", "Bye!", "Talk to you soon.", "Have a nice day!"))))
        return "\n".join(f"{speaker.name}: {text}" for speaker, text in turns)

    # -- fact sheets -----------------------------------------------------------

    def facts(self) -> str:
        """Statements about 4 to 6 countries from the deck (each capital stated at least once)."""
        count = self.rng.randint(MIN_COUNTRIES_PER_FACTS_DOCUMENT, MAX_COUNTRIES_PER_FACTS_DOCUMENT)
        sentences: list[str] = []
        if self.maybe(0.3):
            sentences.append(
                self.pick(
                    (
                        "Here are some facts.",
                        "Facts about the world.",
                        "Did you know these facts?",
                        "Some countries and their capitals.",
                    )
                )
            )
        for _ in range(count):
            country = self.facts_deck.deal()
            statements = capital_statements(country)
            sentences.append(self.pick(statements))
            if self.maybe(0.3):
                sentences.append(self.pick(continent_statements(country)))
            if self.maybe(0.3):
                sentences.append(self.pick(statements))
        if self.maybe(0.4):
            sentences.insert(self.rng.randrange(len(sentences) + 1), self.pick(GENERAL_FACTS))
        return " ".join(sentences)


def generate_corpus(seed: int, n_documents: int) -> list[str]:
    """Yields ``n_documents`` pretraining documents (plain text, none empty) for ``seed``.

    Documents come in seeded order from consecutive blocks of :data:`KIND_BLOCK`
    (4 stories, 2 quizzes, 1 chat, 3 fact sheets per 10). The result depends
    only on ``seed`` and ``n_documents``, and the first ``m`` documents do not
    depend on ``n_documents``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"generate_corpus: seed = {seed!r}, expected an int")
    if isinstance(n_documents, bool) or not isinstance(n_documents, int) or n_documents < 0:
        raise ValueError(f"generate_corpus: n_documents = {n_documents!r}, expected an int >= 0")
    writer = _Writer(seed)
    kinds_rng = random.Random(f"kinds:{seed}")  # a separate stream, so the kind order never shifts the text
    documents: list[str] = []
    while len(documents) < n_documents:
        block = list(KIND_BLOCK)
        kinds_rng.shuffle(block)
        for kind in block[: n_documents - len(documents)]:
            documents.append(getattr(writer, kind)())
    return documents


def generate_story(seed: int, subject: str | None = None) -> str:
    """Yields one story for ``seed``; ``subject`` (e.g. "cat", "apple", "king", "kite") is its hero or topic."""
    return _Writer(seed).story(subject)


def join_documents(documents: Sequence[str], separator: str = END_OF_TEXT) -> str:
    """Yields the documents joined into one training text, each followed by ``separator``."""
    return "".join(document + separator for document in documents)
