"""Built-in intent datasets: Banking77, CLINC150, HWU64 and Bitext customer-service intents.

Each reads the files as their authors published them (bundled under ``data/``, see ``data/README.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

from csml.data.sources.base import DatasetSource
from csml.data.sources.checks import Row
from csml.data.sources.readers import read_csv, read_text, require_file
from csml.data.sources.sampling import stratified_split
from csml.data.splits import DataValidationError

CLINC_SPLITS = {"train": "train", "validation": "val", "test": "test"}
"""csml split -> key of its in-scope list in CLINC150's ``data_full.json`` (out-of-scope: ``oos_<key>``)."""


class Banking77(DatasetSource):
    """Banking77 (Casanueva et al. 2020): 13,083 online-banking queries in 77 intents, CC BY 4.0.

    Args:
        root: Folder holding ``train.csv`` and ``test.csv`` (columns ``text``, ``category``).
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    name = "banking77"

    def __init__(self, root: str | Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)

    def _read(self) -> dict[str, list[Row]]:
        splits = {}
        for split in ("train", "test"):
            path = self.root / f"{split}.csv"
            splits[split] = [
                self._row(split, index, row["text"], file=str(path), row=number, intent=row["category"])
                for index, (number, row) in enumerate(read_csv(path, ["text", "category"]))
            ]
        return splits


class Clinc150(DatasetSource):
    """CLINC150 / OOS-eval (Larson et al. 2019): 150 intents in 10 domains plus out-of-scope, CC BY 3.0.

    Out-of-scope queries (``oos_train``/``oos_val``/``oos_test``) join their split with intent ``"oos"``.
    Records carry their domain (from ``domains.json``, if present) in ``meta["domain"]``.

    Args:
        root: Folder holding ``data_full.json`` (and optionally ``domains.json``).
        include_oos: Keep the out-of-scope queries (151 labels); ``False`` gives the 150 in-scope intents.
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    name = "clinc150"

    def __init__(self, root: str | Path, include_oos: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.include_oos = include_oos

    def _read(self) -> dict[str, list[Row]]:
        path = self.root / "data_full.json"
        data = json.loads(read_text(path))
        domains = self._domains()
        splits: dict[str, list[Row]] = {}
        for split, key in CLINC_SPLITS.items():
            keys = [key, f"oos_{key}"] if self.include_oos else [key]
            splits[split] = []
            for part in keys:
                if part not in data:
                    raise DataValidationError(
                        "missing split", file=str(path), field=part, found="keys " + ", ".join(data)
                    )
                file = f"{path}#{part}"
                for index, item in enumerate(data[part]):
                    if not (isinstance(item, list) and len(item) == 2):
                        raise DataValidationError(
                            "malformed item",
                            file=file,
                            row=index + 1,
                            expected="[text, intent]",
                            found=repr(item),
                        )
                    text, intent = item
                    meta = {"domain": domains[intent]} if intent in domains else {}
                    splits[split].append(
                        self._row(part, index, text, file=file, row=index + 1, intent=intent, meta=meta)
                    )
        return splits

    def _domains(self) -> dict[str, str]:
        path = self.root / "domains.json"
        if not path.is_file():
            return {}
        return {
            intent: domain for domain, intents in json.loads(read_text(path)).items() for intent in intents
        }


class Hwu64(DatasetSource):
    """HWU64 (Liu et al. 2019), 10-fold cross-validation fold 1: 11,036 home-assistant commands, CC BY 4.0.

    Intents are ``<scenario>_<intent>`` (64 labels); the text is what the user said (``answer_from_user``),
    else the annotator's normalised form (``answer_from_anno``). Voice-assistant data, so the channel is call.

    Args:
        root: Folder holding ``hwu64_kfold1_train.csv`` and ``hwu64_kfold1_test.csv``.
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    name = "hwu64"
    _columns = ("answerid", "scenario", "intent", "answer_from_anno", "answer_from_user")

    def __init__(self, root: str | Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)

    def _read(self) -> dict[str, list[Row]]:
        splits = {}
        for split in ("train", "test"):
            path = self.root / f"hwu64_kfold1_{split}.csv"
            splits[split] = [
                self._row(
                    split,
                    index,
                    (row["answer_from_user"] or "").strip() or row["answer_from_anno"],
                    file=str(path),
                    row=number,
                    intent=f"{row['scenario']}_{row['intent']}",
                    meta={"answerid": row["answerid"], "scenario": row["scenario"]},
                )
                for index, (number, row) in enumerate(read_csv(path, self._columns))
            ]
        return splits


class BitextIntents(DatasetSource):
    """Bitext customer-service utterances: 27 intents in 11 categories (orders to feedback), CDLA-Sharing-1.0.

    The dataset has no test split: a stratified ``test_fraction`` of it is held out with ``test_seed``, kept
    apart from ``seed`` so every run seed is evaluated on the same test set. ``category`` and the linguistic
    ``flags`` are kept in ``meta``. Ids are ``bitext_intents:all:<row>``.

    Args:
        root: Folder holding the Bitext CSV files (columns ``flags``, ``utterance``, ``category``, ``intent``).
        file: Which file to read: the 21.5k-utterance set, or ``bitext_8k_customer_service.csv``.
        test_fraction: Fraction of each intent held out as the test split.
        test_seed: Seed of the test hold-out.
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    name = "bitext_intents"

    def __init__(
        self,
        root: str | Path,
        file: str = "bitext_20k_utterances.csv",
        test_fraction: float = 0.2,
        test_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.file = file
        self.test_fraction = test_fraction
        self.test_seed = test_seed

    def _read(self) -> dict[str, list[Row]]:
        path = require_file(self.root / self.file, "a Bitext CSV file")
        rows = [
            self._row(
                "all",
                index,
                row["utterance"],
                file=str(path),
                row=number,
                intent=row["intent"],
                meta={"category": row["category"], "flags": row["flags"]},
            )
            for index, (number, row) in enumerate(
                read_csv(path, ["flags", "utterance", "category", "intent"])
            )
        ]
        train, test = stratified_split(
            rows, self.test_fraction, self.test_seed, key=lambda r: r.record.intent
        )
        return {"train": train, "test": test}
