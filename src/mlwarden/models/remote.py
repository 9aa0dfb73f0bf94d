"""A model behind an HTTP prediction endpoint, seen as a :class:`~mlwarden.models.Target`.

The wire protocol (implemented by mlwarden's guard server; see docs/targets.md):

``POST <url>`` (e.g. ``https://host/v1/predict``) with header ``Authorization: Bearer
<key>`` (when a key is given), ``Content-Type: application/json`` and body
``{"rows": [[x11, x12, ...], ...]}``. The reply is ``200`` with ``{"labels": [...]}``
(one class label per row) and optionally ``"probabilities": [[...], ...]`` (one row of
class probabilities per row, in the order of the model's classes).

``GET <model url>`` (default: ``model`` next to the prediction URL, e.g.
``https://host/v1/model``) describes the model: ``{"n_features": d, "classes": [...],
"outputs": ["labels", "probabilities"], "feature_names": [...]}`` (``feature_names``
optional). Without it, pass ``n_features`` and ``classes``.

Only the standard library is used (:mod:`urllib`). Rows are sent in batches of at
most ``max_batch``; every row counts as a query. ``429 Too Many Requests`` is retried
(after ``Retry-After`` seconds, at most ``max_retry_wait``) up to ``max_retries``
times; any other HTTP error, a timeout, a reply that is not JSON or has the wrong shape
raises :class:`RemoteTargetError` naming the URL.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import InvalidParameterError, MlwardenError, RemoteTargetError
from mlwarden.models.base import Capability, InputSpec, Target

__all__ = ["RemoteTarget", "RemoteTargetError"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class RemoteTarget(Target):
    """A model served over HTTP (JSON rows in, labels and optional probabilities out).

    Parameters
    ----------
    url : str
        The prediction URL, ``http://`` or ``https://`` (e.g. ``http://host/v1/predict``).
    api_key : str or None, default=None
        Sent as ``Authorization: Bearer <api_key>``.
    timeout : float, default=30.0
        Seconds per HTTP request.
    max_batch : int, default=256
        Rows per request.
    n_features : int or None, default=None
        Features per row; with ``classes``, skips asking the model URL.
    classes : array-like or None, default=None
        Class labels in output order (see ``n_features``).
    scores : bool or None, default=None
        Whether the endpoint returns probabilities; ``None`` asks the model URL or, when
        ``n_features`` and ``classes`` are given, assumes labels only.
    model_url : str or None, default=None
        The description URL; default ``model`` next to ``url``.
    max_retries : int, default=3
        Retries of a ``429`` reply.
    max_retry_wait : float, default=30.0
        Longest wait honoured from ``Retry-After``.
    name : str, default="remote"
        Short name used in reports.

    Raises
    ------
    InvalidParameterError
        For a URL that is not http(s) or bad numbers.
    RemoteTargetError
        When the model URL cannot describe the model and ``n_features``/``classes`` are
        missing.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_batch: int = 256,
        n_features: int | None = None,
        classes: npt.ArrayLike | None = None,
        scores: bool | None = None,
        model_url: str | None = None,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        name: str = "remote",
    ) -> None:
        super().__init__(name=name, source=None)
        if not isinstance(url, str) or urllib.parse.urlparse(url).scheme not in ("http", "https"):
            raise InvalidParameterError(f"RemoteTarget: url must be http(s)://..., got {url!r}")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise InvalidParameterError(f"RemoteTarget: timeout must be > 0, got {timeout!r}")
        for pname, val in (("max_batch", max_batch), ("max_retries", max_retries + 1)):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise InvalidParameterError(f"RemoteTarget: {pname} must be a positive integer")
        self.url = url
        self.api_key = api_key
        self.timeout = float(timeout)
        self.max_batch = int(max_batch)
        self.max_retries = int(max_retries)
        self.max_retry_wait = float(max_retry_wait)
        self.model_url = model_url or urllib.parse.urljoin(url, "model")
        self.n_requests = 0
        if n_features is not None and classes is not None:
            info: dict[str, Any] = {
                "n_features": n_features,
                "classes": list(np.asarray(classes).tolist()),
                "outputs": ["labels", "probabilities"] if scores else ["labels"],
            }
        else:
            info = self._describe()
            if n_features is not None:
                info["n_features"] = n_features
            if classes is not None:
                info["classes"] = list(np.asarray(classes).tolist())
            if scores is not None:
                info["outputs"] = ["labels", "probabilities"] if scores else ["labels"]
        d = info.get("n_features")
        labels = info.get("classes")
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            raise RemoteTargetError(f"{self.model_url}: 'n_features' must be a positive integer")
        if not isinstance(labels, list) or len(labels) < 2:
            raise RemoteTargetError(f"{self.model_url}: 'classes' must list at least 2 labels")
        names = info.get("feature_names")
        self._spec = InputSpec(
            n_features=d,
            classes=np.asarray(labels),
            shape=(d,),
            feature_names=tuple(map(str, names)) if isinstance(names, list) else None,
        )
        caps = Capability.LABELS
        if "probabilities" in (info.get("outputs") or []):
            caps |= Capability.SCORES
        self._capabilities = caps

    @property
    def capabilities(self) -> Capability:
        """``LABELS``, plus ``SCORES`` when the endpoint returns probabilities."""
        return self._capabilities

    @property
    def input_spec(self) -> InputSpec:
        """Feature count and classes, as the model URL (or the constructor) gave them."""
        return self._spec

    def describe(self) -> dict[str, Any]:
        """The base description plus the URL."""
        return super().describe() | {"url": self.url}

    # ------------------------------------------------------------------ internals
    def _predict_labels(self, x: FloatArray) -> IntArray:
        labels, _ = self._predict(x, need_scores=False)
        return labels

    def _predict_proba(self, x: FloatArray) -> FloatArray:
        _, proba = self._predict(x, need_scores=True)
        assert proba is not None
        return proba

    def _predict(self, x: FloatArray, *, need_scores: bool) -> tuple[IntArray, FloatArray | None]:
        labels: list[IntArray] = []
        probas: list[FloatArray] = []
        for i in range(0, len(x), self.max_batch):
            chunk = x[i : i + self.max_batch]
            reply = self._request(self.url, {"rows": chunk.tolist()})
            lab, proba = self._parse(reply, len(chunk), need_scores)
            labels.append(lab)
            if proba is not None:
                probas.append(proba)
        lab_all = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
        if need_scores:
            k = self.n_classes
            return lab_all, (np.vstack(probas) if probas else np.zeros((0, k)))
        return lab_all, None

    def _parse(self, reply: Any, n: int, need_scores: bool) -> tuple[IntArray, FloatArray | None]:
        if not isinstance(reply, dict) or not isinstance(reply.get("labels"), list):
            raise RemoteTargetError(f"{self.url}: the reply has no 'labels' list")
        raw = reply["labels"]
        if len(raw) != n:
            raise RemoteTargetError(f"{self.url}: sent {n} rows but got {len(raw)} labels")
        try:
            labels = self.encode_labels(np.asarray(raw))
        except MlwardenError as exc:
            raise RemoteTargetError(f"{self.url}: {exc}") from None
        proba = None
        if need_scores:
            if "probabilities" not in reply:
                raise RemoteTargetError(f"{self.url}: the reply has no 'probabilities'")
            try:
                proba = np.asarray(reply["probabilities"], dtype=np.float64)
            except (TypeError, ValueError):
                raise RemoteTargetError(f"{self.url}: 'probabilities' is not numeric") from None
            if proba.shape != (n, self.n_classes) or not np.all(np.isfinite(proba)):
                raise RemoteTargetError(
                    f"{self.url}: 'probabilities' must be {n} rows of {self.n_classes} finite "
                    f"numbers, got shape {proba.shape}"
                )
        return labels, proba

    def _describe(self) -> dict[str, Any]:
        try:
            info = self._request(self.model_url, None)
        except RemoteTargetError as exc:
            raise RemoteTargetError(
                f"{exc}; pass n_features=... and classes=... to use {self.url} without a "
                "model description"
            ) from None
        if not isinstance(info, dict):
            raise RemoteTargetError(f"{self.model_url}: the reply is not a JSON object")
        return info

    def _request(self, url: str, body: dict[str, Any] | None) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            req = urllib.request.Request(
                url, data=data, headers=headers, method="POST" if body is not None else "GET"
            )
            try:
                self.n_requests += 1
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    payload = resp.read()
                break
            except urllib.error.HTTPError as exc:
                if exc.code == 429 and attempt < self.max_retries:
                    attempt += 1
                    time.sleep(_retry_after(exc.headers.get("Retry-After"), self.max_retry_wait))
                    continue
                detail = _error_detail(exc)
                raise RemoteTargetError(
                    f"{url}: HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
                ) from None
            except TimeoutError:
                raise RemoteTargetError(f"{url}: no reply within {self.timeout:g} s") from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    raise RemoteTargetError(f"{url}: no reply within {self.timeout:g} s") from None
                raise RemoteTargetError(f"{url}: cannot connect ({exc.reason})") from None
            except OSError as exc:
                raise RemoteTargetError(f"{url}: {exc}") from None
        try:
            return json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            shown = payload[:80].decode("utf-8", "replace")
            raise RemoteTargetError(f"{url}: the reply is not JSON ({shown!r})") from None


def _retry_after(value: str | None, cap: float) -> float:
    try:
        wait = float(value) if value is not None else 1.0
    except ValueError:
        wait = 1.0
    return min(max(wait, 0.0), cap)


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace").strip()
    except Exception:  # a broken error body must not hide the status
        return ""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or "")[:200]
    return ""
