"""Dataset sources: built-in real datasets, a user's own files, and Hugging Face datasets.

Every source is a :class:`DatasetSource` whose ``load(label_field)`` returns validated train/validation/test
:class:`~csml.data.splits.DatasetSplits`. Configs under ``conf/data/`` instantiate them by ``_target_``.
"""

from __future__ import annotations

from csml.data.sources.base import DatasetSource
from csml.data.sources.files import TabularFileSource
from csml.data.sources.hub import HubDatasetSource
from csml.data.sources.intents import Banking77, BitextIntents, Clinc150, Hwu64
from csml.data.sources.sentiment import AirlineTweets, SemEval2017, UciSentences

__all__ = [
    "AirlineTweets",
    "Banking77",
    "BitextIntents",
    "Clinc150",
    "DatasetSource",
    "HubDatasetSource",
    "Hwu64",
    "SemEval2017",
    "TabularFileSource",
    "UciSentences",
]
