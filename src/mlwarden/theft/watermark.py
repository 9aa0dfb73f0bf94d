"""DAWN-style watermarking of answers: prove later that a suspect model was copied from yours.

Reference
---------
S. Szyller, B. G. Atli, S. Marchal, N. Asokan. "DAWN: Dynamic Adversarial
Watermarking of Neural Networks." ACM Multimedia 2021. https://arxiv.org/abs/1906.00830

Threat model
------------
A client extracts the model through its prediction API (MITRE ATLAS AML.T0024.002,
OWASP ML05) and deploys the copy. Detection during extraction can be evaded, so the
API also answers a small, secret, keyed fraction of queries with a deliberately wrong
label. A surrogate trained on those answers tends to reproduce them (deep networks,
trees and nearest-neighbour models memorise their training points); an independently
trained model agrees with the wrong labels only by chance. Verification replays the
logged queries, re-derives which answers were changed, and tests the suspect's
agreement with the wrong labels against the chance rate with a one-sided binomial
test. The key must stay secret: whoever holds it can find and avoid the changed
answers. Changing answers costs accuracy for the clients it applies to (``rate`` of
their queries), which is why the guard applies it only to flagged clients by default
and the feature is opt-in. A thief who only queries rarely-watermarked regions, or
trains a low-capacity surrogate that smooths the wrong labels away, weakens the
evidence; a query log with too few watermarked queries gives a large p-value, never a
false "extracted".

Selection is stateless: ``HMAC-SHA256(key, query bytes)`` decides whether a query is
watermarked and which wrong label it gets, so the same query always gets the same
answer (a thief cannot average changed answers away by repeating a query) and nothing
needs storing per query beyond the ordinary query log.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_number
from mlwarden.exceptions import DataError, InvalidParameterError

__all__ = ["Watermark", "WatermarkVerification"]

_SCALE = float(2**64)


def _row_bytes(x: npt.NDArray[np.float64]) -> bytes:
    # float64, C order, -0.0 folded into 0.0: a float32 or list query hashes the same
    return np.ascontiguousarray(x + 0.0, dtype=np.float64).tobytes()


@dataclass(frozen=True)
class WatermarkVerification:
    """Outcome of :meth:`Watermark.verify`.

    Attributes
    ----------
    n_queries : int
        Queries examined.
    n_watermarked : int
        Of those, queries whose answer the watermark changed.
    n_agree : int
        Watermarked queries on which the suspect gives the watermark's wrong label.
    agreement : float
        ``n_agree / n_watermarked`` (NaN when there are none).
    chance_rate : float
        Probability that a model not derived from the watermarked answers gives the
        watermark's label, estimated from the suspect's disagreement with the original
        labels on the other queries.
    p_value : float
        One-sided binomial test of ``n_agree`` against ``chance_rate``.
    alpha : float
        Significance level.
    extracted : bool
        ``p_value < alpha``: evidence that the suspect learned the watermarked answers.
    """

    n_queries: int
    n_watermarked: int
    n_agree: int
    agreement: float
    chance_rate: float
    p_value: float
    alpha: float
    extracted: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain types."""
        return {
            "n_queries": self.n_queries,
            "n_watermarked": self.n_watermarked,
            "n_agree": self.n_agree,
            "agreement": self.agreement,
            "chance_rate": self.chance_rate,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "extracted": self.extracted,
        }


class Watermark:
    """Keyed, stateless answer watermark (DAWN, Szyller et al. 2021).

    Parameters
    ----------
    key : bytes or str
        Secret key, at least 16 bytes (a ``str`` is UTF-8 encoded). Keep it with
        the model's other secrets; it is never shown in ``repr``.
    rate : float, default=0.005
        Fraction of queries whose answer is changed (0.5 %, as in the paper's range
        of 0.5-5 %).
    classes : sequence
        The model's class labels; a watermarked answer is one of the other classes.

    Examples
    --------
    >>> import numpy as np
    >>> wm = Watermark(key=b"0123456789abcdef-secret", rate=0.5, classes=[0, 1])
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> answers, changed = wm.apply(X, np.zeros(10, dtype=int))
    >>> bool((answers[changed] == 1).all())
    True
    """

    def __init__(self, *, key: bytes | str, rate: float = 0.005, classes: Any = (0, 1)) -> None:
        self.key = key
        self.rate = rate
        self.classes = classes

    def __repr__(self) -> str:
        return f"Watermark(key=<secret>, rate={self.rate!r}, classes={self.classes!r})"

    # ------------------------------------------------------------ internals
    def _setup(self) -> tuple[bytes, float, list[Any]]:
        key = self.key.encode("utf-8") if isinstance(self.key, str) else self.key
        if not isinstance(key, bytes) or len(key) < 16:
            raise InvalidParameterError("Watermark: key must be at least 16 bytes")
        rate = check_number("Watermark", "rate", self.rate, low=0.0, high=1.0, low_open=True)
        classes = [c.item() if isinstance(c, np.generic) else c for c in self.classes]
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise InvalidParameterError(
                f"Watermark: classes must list at least 2 distinct labels, got {self.classes!r}"
            )
        return key, rate, classes

    @staticmethod
    def _rows(X: Any) -> npt.NDArray[np.float64]:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("Watermark: queries must be numeric") from None
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise DataError(f"Watermark: queries must be a 2-D matrix, got shape {arr.shape}")
        return arr

    def _decide(
        self, X: npt.NDArray[np.float64], labels: Any, key: bytes, rate: float, classes: list[Any]
    ) -> tuple[npt.NDArray[np.bool_], list[Any]]:
        y = [v.item() if isinstance(v, np.generic) else v for v in np.asarray(labels).ravel()]
        if len(y) != X.shape[0]:
            raise DataError(
                f"Watermark: {X.shape[0]} queries but {len(y)} labels; give one label per query"
            )
        index = {c: i for i, c in enumerate(classes)}
        mask = np.zeros(X.shape[0], dtype=bool)
        wrong: list[Any] = list(y)
        for i in range(X.shape[0]):
            digest = hmac.new(key, _row_bytes(X[i]), hashlib.sha256).digest()
            if int.from_bytes(digest[:8], "big") / _SCALE >= rate:
                continue
            if y[i] not in index:
                raise DataError(
                    f"Watermark: label {y[i]!r} (query {i}) is not one of the classes {classes!r}"
                )
            others = [c for c in classes if c != y[i]]
            wrong[i] = others[int.from_bytes(digest[8:16], "big") % len(others)]
            mask[i] = True
        return mask, wrong

    # ------------------------------------------------------------ serving
    def selected(self, X: Any) -> npt.NDArray[np.bool_]:
        """Which rows of ``X`` the key selects for watermarking (boolean mask)."""
        key, rate, _ = self._setup()
        rows = self._rows(X)
        out = np.empty(rows.shape[0], dtype=bool)
        for i in range(rows.shape[0]):
            digest = hmac.new(key, _row_bytes(rows[i]), hashlib.sha256).digest()
            out[i] = int.from_bytes(digest[:8], "big") / _SCALE < rate
        return out

    def apply(self, X: Any, labels: Any) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
        """The answers to send: ``labels`` with the keyed fraction changed.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            The queries, exactly as received.
        labels : array-like of shape (n_queries,)
            The model's honest answers.

        Returns
        -------
        answers : ndarray of shape (n_queries,)
            Labels to return to the client.
        changed : ndarray of bool
            Which answers were changed.
        """
        key, rate, classes = self._setup()
        rows = self._rows(X)
        mask, wrong = self._decide(rows, labels, key, rate, classes)
        answers = np.asarray(labels).ravel().copy()
        if mask.any():
            answers = answers.astype(object) if answers.dtype.kind in "US" else answers
            for i in np.flatnonzero(mask):
                answers[i] = wrong[i]
        return answers, mask

    def answer(self, x: Any, label: Any) -> Any:
        """The answer to send for one query ``x`` whose honest answer is ``label``."""
        answers, _ = self.apply(self._rows(x), [label])
        value = answers[0]
        return value.item() if isinstance(value, np.generic) else value

    # ------------------------------------------------------------ verification
    def verify(
        self,
        suspect: Any,
        X: Any,
        original_labels: Any,
        *,
        alpha: float = 0.01,
    ) -> WatermarkVerification:
        """Test whether ``suspect`` learned the watermarked answers to the queries ``X``.

        Parameters
        ----------
        suspect : Target, estimator with ``predict``, or callable
            The model suspected of being a copy; only its labels are used.
        X : array-like of shape (n_queries, n_features)
            Queries that the suspected thief sent (from the query log), as received.
        original_labels : array-like of shape (n_queries,)
            The protected model's honest answers to ``X``.
        alpha : float, default=0.01
            Significance level of the binomial test.

        Returns
        -------
        WatermarkVerification
        """
        from scipy.stats import binomtest

        check_number("Watermark.verify", "alpha", alpha, low=0.0, high=1.0, low_open=True)
        key, rate, classes = self._setup()
        rows = self._rows(X)
        mask, wrong = self._decide(rows, original_labels, key, rate, classes)
        predicted = _suspect_labels(suspect, rows)
        y = np.asarray(original_labels, dtype=object).ravel()
        n_wm = int(mask.sum())
        agree = sum(predicted[i] == wrong[i] for i in np.flatnonzero(mask))
        rest = ~mask
        n_rest = int(rest.sum())
        disagree = sum(predicted[i] != y[i] for i in np.flatnonzero(rest))
        # chance of hitting one specific wrong label: disagreement spread over the others
        # (add-one smoothing so a perfect copy on the rest does not give a zero rate)
        chance = (disagree + 1) / (n_rest + 2) / (len(classes) - 1)
        if n_wm == 0:
            p_value, agreement = 1.0, float("nan")
        else:
            p_value = float(binomtest(int(agree), n_wm, chance, alternative="greater").pvalue)
            agreement = agree / n_wm
        return WatermarkVerification(
            n_queries=int(rows.shape[0]),
            n_watermarked=n_wm,
            n_agree=int(agree),
            agreement=float(agreement),
            chance_rate=float(chance),
            p_value=p_value,
            alpha=float(alpha),
            extracted=bool(p_value < alpha),
        )


def _suspect_labels(suspect: Any, X: npt.NDArray[np.float64]) -> list[Any]:
    import sys

    # a Target's module is loaded whenever the suspect is one: no import needed otherwise
    base = sys.modules.get("mlwarden.models.base")
    if base is not None and isinstance(suspect, base.Target):
        out = np.asarray(suspect.classes)[suspect.predict(X)]
    elif hasattr(suspect, "predict"):
        out = np.asarray(suspect.predict(X))
    elif callable(suspect):
        out = np.asarray(suspect(X))
    else:
        raise InvalidParameterError(
            "Watermark.verify: suspect must be a target, an estimator with predict, "
            f"or a callable, got {type(suspect).__name__}"
        )
    labels = [v.item() if isinstance(v, np.generic) else v for v in out.ravel()]
    if len(labels) != X.shape[0]:
        raise DataError(
            f"Watermark.verify: the suspect returned {len(labels)} labels for {X.shape[0]} queries"
        )
    return labels
