"""Datasets loaded with Hugging Face ``datasets.load_dataset``: hub names, or local files through a builder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csml.data.sources.base import DatasetSource
from csml.data.sources.checks import Row
from csml.data.sources.columns import RowConverter
from csml.data.splits import DataValidationError

if TYPE_CHECKING:
    import datasets

DEFAULT_SPLITS = {"train": "train", "validation": "validation", "test": "test"}


class HubDatasetSource(DatasetSource):
    """A dataset from ``datasets.load_dataset(path, name, ...)``, mapped onto records by columns.

    ``path`` is a hub id (``"PolyAI/banking77"``) for users with network access, or a builder such as
    ``"json"``/``"csv"``/``"parquet"`` with ``data_files`` for local files. Class-label columns are turned
    into their label names. Without a validation split, one is carved from train.

    Args:
        path: Dataset path or builder name passed to ``load_dataset``.
        name: Dataset configuration name passed to ``load_dataset``.
        splits: csml split -> dataset split; ``train`` and ``test`` required. By default ``train``,
            ``validation`` (used if present) and ``test``.
        columns: Record field -> column name (see :class:`~csml.data.sources.columns.RowConverter`).
        dataset: csml dataset name (record ``source``, id prefix, journey-map key); by default the last part
            of ``path``.
        data_files: ``data_files`` of ``load_dataset`` (builder datasets).
        revision: Git revision of a hub dataset, pinned for reproducibility.
        cache_dir: Cache folder of ``datasets``; its default when ``None``.
        default_stage: Journey stage of rows no column or intent override decides.
        default_channel: Channel of rows without a channel column value.
        meta_columns: Further columns kept in ``Record.meta``.
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    def __init__(
        self,
        path: str,
        name: str | None = None,
        *,
        columns: Mapping[str, str],
        splits: Mapping[str, str] | None = None,
        dataset: str | None = None,
        data_files: Any = None,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        default_stage: str | None = None,
        default_channel: str | None = None,
        meta_columns: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.config_name = name
        self.name = dataset or path.rstrip("/").split("/")[-1]
        self.splits = dict(splits) if splits is not None else None
        if self.splits is not None and not {"train", "test"} <= set(self.splits):
            raise ValueError(
                f"splits must map 'train' and 'test' (optionally 'validation'), got {self.splits}"
            )
        self.data_files = data_files
        self.revision = revision
        self.cache_dir = cache_dir
        self.converter = RowConverter(
            self.name,
            columns,
            default_stage=default_stage,
            default_channel=default_channel,
            journey=self.journey.datasets.get(self.name),
            meta_columns=meta_columns,
            label_separator=self.label_separator,
        )

    def _read(self) -> dict[str, list[Row]]:
        import datasets

        loaded = datasets.load_dataset(
            self.path,
            self.config_name,
            data_files=_plain_files(self.data_files),
            revision=self.revision,
            cache_dir=str(self.cache_dir) if self.cache_dir is not None else None,
        )
        return self.rows_from_dataset_dict(loaded)

    def rows_from_dataset_dict(self, loaded: Mapping[str, datasets.Dataset]) -> dict[str, list[Row]]:
        """Rows of the csml splits from a loaded ``DatasetDict`` (split name -> ``Dataset``)."""
        available = list(loaded)
        wanted = self.splits or {
            split: hub for split, hub in DEFAULT_SPLITS.items() if split != "validation" or hub in loaded
        }
        uri = self.path + (f"/{self.config_name}" if self.config_name else "")
        rows = {}
        for split, hub_split in wanted.items():
            if hub_split not in loaded:
                raise DataValidationError(
                    f"dataset has no {hub_split!r} split for csml's {split!r}",
                    file=uri,
                    field="splits",
                    expected=f"one of {', '.join(available)}",
                    found=repr(hub_split),
                )
            rows[split] = self.rows_from_dataset(loaded[hub_split], split, f"{uri}:{hub_split}")
        return rows

    def rows_from_dataset(self, dataset: datasets.Dataset, split: str, origin: str) -> list[Row]:
        """Rows of one ``datasets.Dataset``, class-label ids (and lists of them, as multi-label datasets hold)
        turned into names; rows counted from 1."""
        self.converter.check_columns(dataset.column_names, origin)
        needed = list(dict.fromkeys(self.converter.required))
        table = dataset.select_columns(needed).to_dict()
        for column in needed:
            feature = dataset.features[column]
            listed = getattr(feature, "feature", None)
            if hasattr(feature, "int2str"):
                table[column] = [None if value is None else feature.int2str(value) for value in table[column]]
            elif hasattr(listed, "int2str"):
                table[column] = [
                    None if value is None else [listed.int2str(i) for i in value] for value in table[column]
                ]
        return [
            self.converter.row(
                dict(zip(needed, values, strict=True)), split=split, index=index, file=origin, row=index + 1
            )
            for index, values in enumerate(zip(*(table[column] for column in needed), strict=True))
        ]


def _plain_files(data_files: Any) -> Any:
    """``data_files`` as the str / list / dict ``load_dataset`` expects (from paths or OmegaConf nodes)."""
    if data_files is None or isinstance(data_files, str | Path):
        return None if data_files is None else str(data_files)
    if isinstance(data_files, Mapping):
        return {str(split): _plain_files(files) for split, files in data_files.items()}
    return [str(file) for file in data_files]
