"""Out-of-scope (OOS) scores: how in-scope an utterance looks, from the classifier's features and logits.

Every scorer returns one score per utterance, higher meaning more in scope; an utterance is rejected as OOS
when its score is below a threshold chosen on validation data (:mod:`csml.metrics.oos`).

- ``softmax``: the highest softmax probability of an in-scope class (no statistics to fit).
- ``energy``: the log-sum-exp of the in-scope logits (Liu et al. 2020, "Energy-based OOD detection").
- ``mahalanobis``: minus the smallest Mahalanobis distance of the pooled features to an in-scope class mean,
  with one covariance shared by all classes (Podolskiy et al. 2021, "Revisiting Mahalanobis Distance for
  Transformer-Based Out-of-Domain Detection").
- ``knn``: the cosine similarity of the L2-normalised features to their k-th nearest in-scope training
  utterance (Sun et al. 2022, "Out-of-Distribution Detection with Deep Nearest Neighbors").

``mahalanobis`` and ``knn`` are fitted on training features of in-scope classes; their statistics are saved
with the model (:meth:`OOSScorer.save`, :func:`load_oos_scorer`) so the pyfunc and ``csml eval`` use them.
Other distributions add scorers through the entry-point group ``csml.oos_scorers`` (:data:`OOS_SCORERS`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from csml.registry import Registry

STATE_FILE = "oos_scorer.npz"


class OOSScorer(ABC):
    """Contract of an OOS score.

    Args:
        in_scope: Boolean mask over the classifier's classes, True for in-scope classes (all but the OOS
            class); logit-based scores ignore the OOS column and feature statistics skip OOS utterances.
    """

    name: ClassVar[str]
    fitted_from_features: ClassVar[bool] = False
    """Whether :meth:`fit` needs training features (False: the score is a function of the logits)."""

    def __init__(self, in_scope: np.ndarray) -> None:
        self.in_scope = np.asarray(in_scope, dtype=bool)
        if self.in_scope.ndim != 1 or not self.in_scope.any():
            raise ValueError("in_scope must be a 1-D boolean class mask with at least one in-scope class")

    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments besides ``in_scope`` (written to the model card)."""
        return {}

    def fit(self, features: np.ndarray, y: np.ndarray) -> OOSScorer:
        """Fits the statistics on training ``features`` (n, d) with class indices ``y`` (n,); returns self."""
        return self

    @abstractmethod
    def score(self, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """In-scope score of each utterance, shape (n,); higher means more in scope."""

    def state(self) -> dict[str, np.ndarray]:
        """Fitted arrays, saved with the model."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> OOSScorer:
        """Restores :meth:`state`; returns self."""
        return self

    def save(self, directory: str | Path) -> dict[str, Any]:
        """Writes the fitted arrays into an existing model folder; returns the model-card entries naming
        the scorer (:meth:`EncoderClassifier.save` adds them to the card)."""
        state = self.state()
        if state:
            np.savez(Path(directory) / STATE_FILE, **state)
        return {"oos_score": self.name, "oos_score_params": self.params}

    def _in_scope_logits(self, logits: np.ndarray) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != self.in_scope.size:
            raise ValueError(f"logits must have shape (n, {self.in_scope.size}); found {logits.shape}")
        return logits[:, self.in_scope]

    def _check_fitted(self, *arrays: Any) -> None:
        if any(a is None for a in arrays):
            raise RuntimeError(f"the {self.name} OOS scorer is not fitted; call fit() on training features")


OOS_SCORERS: Registry[type[OOSScorer]] = Registry("oos_scorers", "OOS score", base=OOSScorer)
"""Scorer classes by the name ``evaluation.oos_score`` chooses (entry-point group ``csml.oos_scorers``)."""


def _check_features(features: np.ndarray, dim: int | None = None) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or (dim is not None and features.shape[1] != dim):
        expected = f"(n, {dim})" if dim is not None else "(n, d)"
        raise ValueError(f"features must have shape {expected}; found {features.shape}")
    return features


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (n, k), computed stably."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@OOS_SCORERS.register()
class SoftmaxScorer(OOSScorer):
    """Highest in-scope softmax probability (softmax over all classes, OOS included)."""

    name = "softmax"

    def score(self, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return self._in_scope_logits(softmax(logits)).max(axis=1)


@OOS_SCORERS.register()
class EnergyScorer(OOSScorer):
    """Log-sum-exp of the in-scope logits (the negative free energy)."""

    name = "energy"

    def score(self, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
        z = self._in_scope_logits(logits)
        top = z.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]


@OOS_SCORERS.register()
class MahalanobisScorer(OOSScorer):
    """Minus the smallest Mahalanobis distance to an in-scope class mean, with a shared covariance.

    Args:
        in_scope: See :class:`OOSScorer`.
        ridge: Added to the covariance's diagonal, relative to its mean variance, so it inverts stably.
    """

    name = "mahalanobis"
    fitted_from_features = True

    def __init__(self, in_scope: np.ndarray, ridge: float = 1e-6) -> None:
        super().__init__(in_scope)
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0; found {ridge}")
        self.ridge = float(ridge)
        self.means: np.ndarray | None = None
        self.precision: np.ndarray | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {"ridge": self.ridge}

    def fit(self, features: np.ndarray, y: np.ndarray) -> MahalanobisScorer:
        features, y = _in_scope_rows(_check_features(features), y, self.in_scope)
        classes = np.unique(y)  # in-scope classes absent from training (tiny slices) get no mean
        means = np.stack([features[y == c].mean(axis=0) for c in classes])
        centred = features - means[np.searchsorted(classes, y)]
        cov = centred.T @ centred / len(features)
        cov += np.eye(cov.shape[0]) * self.ridge * np.trace(cov) / cov.shape[0]
        self.means, self.precision = means, np.linalg.pinv(cov, hermitian=True)
        return self

    def score(self, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
        self._check_fitted(self.means, self.precision)
        x = _check_features(features, self.means.shape[1])
        xp = x @ self.precision
        mp = self.means @ self.precision
        dist = (
            (xp * x).sum(axis=1, keepdims=True) - 2 * xp @ self.means.T + (mp * self.means).sum(axis=1)[None]
        )
        return -dist.min(axis=1)

    def state(self) -> dict[str, np.ndarray]:
        self._check_fitted(self.means, self.precision)
        return {"means": self.means, "precision": self.precision}

    def load_state(self, state: dict[str, np.ndarray]) -> MahalanobisScorer:
        self.means, self.precision = state["means"], state["precision"]
        return self


@OOS_SCORERS.register()
class KnnScorer(OOSScorer):
    """Cosine similarity to the k-th nearest in-scope training utterance (L2-normalised features).

    Args:
        in_scope: See :class:`OOSScorer`.
        k: Which neighbour's similarity is the score (1 = the nearest).
    """

    name = "knn"
    fitted_from_features = True

    def __init__(self, in_scope: np.ndarray, k: int = 1) -> None:
        super().__init__(in_scope)
        if int(k) < 1:
            raise ValueError(f"k must be >= 1; found {k}")
        self.k = int(k)
        self.bank: np.ndarray | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {"k": self.k}

    def fit(self, features: np.ndarray, y: np.ndarray) -> KnnScorer:
        features, _ = _in_scope_rows(_check_features(features), y, self.in_scope)
        if len(features) < self.k:
            raise ValueError(f"k={self.k} needs at least {self.k} in-scope training utterances")
        self.bank = _normalise(features).astype(np.float32)
        return self

    def score(self, features: np.ndarray, logits: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        self._check_fitted(self.bank)
        x = _normalise(_check_features(features, self.bank.shape[1])).astype(np.float32)
        out = np.empty(len(x))
        for start in range(0, len(x), batch_size):
            sims = x[start : start + batch_size] @ self.bank.T
            out[start : start + batch_size] = -np.partition(-sims, self.k - 1, axis=1)[:, self.k - 1]
        return out

    def state(self) -> dict[str, np.ndarray]:
        self._check_fitted(self.bank)
        return {"bank": self.bank}

    def load_state(self, state: dict[str, np.ndarray]) -> KnnScorer:
        self.bank = state["bank"]
        return self


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def _in_scope_rows(
    features: np.ndarray, y: np.ndarray, in_scope: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    if y.shape != (len(features),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold {len(features)} class indices; found shape {y.shape}, {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= in_scope.size):
        raise ValueError(f"y holds class indices outside [0, {in_scope.size})")
    keep = in_scope[y]
    if not keep.any():
        raise ValueError("no in-scope training utterances to fit the OOS scorer on")
    return features[keep], y[keep]


def make_oos_scorer(
    name: str, labels: list[str], oos_label: str | None, params: dict[str, Any] | None = None
) -> OOSScorer:
    """Builds the scorer called ``name`` for a classifier with ``labels`` (OOS class ``oos_label``, if any).

    Raises:
        csml.registry.UnknownNameError: For an unknown name (a ``ValueError``, with the closest known ones).
        ValueError: For bad parameters.
    """
    scorer = OOS_SCORERS[name]
    in_scope = np.array([label != oos_label for label in labels])
    try:
        return scorer(in_scope, **(params or {}))
    except TypeError as err:
        raise ValueError(f"bad parameters {params} for the {name} OOS score: {err}") from err


def load_oos_scorer(directory: str | Path, card: dict[str, Any]) -> OOSScorer:
    """The scorer a saved model folder was built with; ``softmax`` for models saved without one."""
    scorer = make_oos_scorer(
        card.get("oos_score", SoftmaxScorer.name),
        card["labels"],
        card.get("oos_label"),
        card.get("oos_score_params"),
    )
    path = Path(directory) / STATE_FILE
    if scorer.fitted_from_features:
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} names OOS score {scorer.name!r} but {STATE_FILE} is missing"
            )
        with np.load(path) as state:
            scorer.load_state(dict(state))
    return scorer
