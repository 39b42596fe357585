"""Generated data: countries and capitals, the pretraining corpus, fine-tuning and sentiment sets.

Nothing is downloaded; every set is produced from a seed by the modules here.
"""

from .corpus import DOCUMENTS_PER_COVERAGE_ROUND, END_OF_TEXT, generate_corpus, generate_story, join_documents
from .countries import COUNTRIES, COUNTRY_BY_NAME, Country
from .finetune import (
    CountrySplit,
    DatasetError,
    Example,
    FinetuneDataset,
    build_finetune_dataset,
    capital_qa_examples,
    chat_examples,
    instruction_examples,
    read_jsonl,
    split_countries,
    write_jsonl,
)
from .sentiment import HAPPY, SAD, SentimentExample, generate_sentiment_examples

__all__ = [
    "COUNTRIES",
    "COUNTRY_BY_NAME",
    "Country",
    "CountrySplit",
    "DOCUMENTS_PER_COVERAGE_ROUND",
    "DatasetError",
    "END_OF_TEXT",
    "Example",
    "FinetuneDataset",
    "HAPPY",
    "SAD",
    "SentimentExample",
    "build_finetune_dataset",
    "capital_qa_examples",
    "chat_examples",
    "generate_corpus",
    "generate_sentiment_examples",
    "generate_story",
    "instruction_examples",
    "join_documents",
    "read_jsonl",
    "split_countries",
    "write_jsonl",
]
