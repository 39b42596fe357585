"""Pre-transformer baselines from the source material: an n-gram next-word suggester and a perceptron."""

from .ngram import NGramEvaluation, NGramModel, split_words
from .perceptron import Perceptron, PerceptronTrainingReport

__all__ = ["NGramEvaluation", "NGramModel", "Perceptron", "PerceptronTrainingReport", "split_words"]
