"""A small generated set of happy and sad sentences, for the perceptron baseline.

The source material's first "model" scores each word as happy or sad and adds
the scores up. This set is built so that idea works and can be checked: each
sentence carries one or two sentiment words of its own class and otherwise
only neutral words shared by both classes, so the classes are linearly
separable by word counts (the perceptron convergence theorem then promises the
perceptron rule finds a separating set of scores).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .corpus import ANIMALS, FRUITS, PEOPLE, TOWN_PLACES, with_article

HAPPY = 1  # label of a happy sentence
SAD = -1  # label of a sad sentence

# Adjectives only, so that every template reads as English with any of them.
HAPPY_WORDS = "happy glad joyful delighted cheerful excited wonderful great lovely merry sunny bright amazing pleased".split()
SAD_WORDS = "sad unhappy gloomy miserable lonely upset terrible awful horrible boring dreadful grumpy tearful dark".split()

# Templates with one or two slots for sentiment words of the sentence's class;
# every other word is shared by both classes.
_TEMPLATES = (
    "{name} felt {mood} today.",
    "I am so {mood} about the {place}.",
    "The day at the {place} was {mood}.",
    "{name} had {a_mood} time with the {animal}.",
    "What {a_mood} {fruit}!",
    "It was {a_mood} and {mood2} morning.",
    "{name} said the trip was {mood}.",
    "We were {mood} when the {animal} came home.",
    "This {fruit} makes me feel {mood}.",
    "The weather was {mood} and everyone was {mood2}.",
)


@dataclass(frozen=True)
class SentimentExample:
    """A sentence and its label, ``HAPPY`` (+1) or ``SAD`` (-1)."""

    text: str
    label: int


def generate_sentiment_examples(seed: int, n_examples: int) -> list[SentimentExample]:
    """Yields ``n_examples`` seeded sentences, alternating happy and sad (so the classes are balanced)."""
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 0:
        raise ValueError(f"generate_sentiment_examples: n_examples = {n_examples!r}, expected an int >= 0")
    rng = random.Random(f"sentiment:{seed}")
    examples = []
    for index in range(n_examples):
        label = HAPPY if index % 2 == 0 else SAD
        words = HAPPY_WORDS if label == HAPPY else SAD_WORDS
        mood = rng.choice(words)
        text = rng.choice(_TEMPLATES).format(
            name=rng.choice(PEOPLE).name,
            place=rng.choice(TOWN_PLACES),
            animal=rng.choice(ANIMALS),
            fruit=rng.choice(FRUITS),
            mood=mood,
            a_mood=with_article(mood),
            mood2=rng.choice(words),
        )
        examples.append(SentimentExample(text, label))
    return examples
