"""RemoteTarget against a tiny model served with http.server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlwarden.exceptions import CapabilityError, InvalidParameterError
from mlwarden.models import Capability
from mlwarden.models.remote import RemoteTarget, RemoteTargetError

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3))
LABELS = np.array(["legit", "fraud"])
Y = LABELS[(X[:, 0] + X[:, 1] > 0).astype(int)]
MODEL = LogisticRegression().fit(X, Y)
KEY = "s3cret"


class _Server:
    """What the handler does; tests change ``mode``."""

    mode = "ok"
    scores = True
    requests: ClassVar[list[dict[str, Any]]] = []
    throttled = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != "/v1/model":
            self._send(404, {"detail": "not found"})
            return
        outputs = ["labels", "probabilities"] if _Server.scores else ["labels"]
        self._send(200, {"n_features": 3, "classes": LABELS.tolist(), "outputs": outputs})

    def do_POST(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self._send(401, {"detail": "missing or wrong API key"})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Server.requests.append(body)
        rows = np.asarray(body["rows"], dtype=float)
        mode = _Server.mode
        if mode == "throttle" and _Server.throttled < 2:
            _Server.throttled += 1
            self._send(429, {"detail": "slow down"}, {"Retry-After": "0"})
            return
        if mode == "error":
            self._send(500, {"detail": "model crashed"})
            return
        if mode == "html":
            self._send(200, b"<html>oops</html>")
            return
        if mode == "slow":
            time.sleep(0.5)
        labels = MODEL.predict(rows).tolist()
        if mode == "short":
            labels = labels[:-1]
        reply: dict[str, Any] = {"labels": labels}
        if _Server.scores:
            # predict_proba columns follow MODEL.classes_ (sorted): fraud, legit.
            proba = MODEL.predict_proba(rows)
            order = [list(MODEL.classes_).index(c) for c in LABELS]
            reply["probabilities"] = proba[:, order].tolist()
        self._send(200, reply)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/predict"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _reset() -> None:
    _Server.mode, _Server.scores, _Server.throttled = "ok", True, 0
    _Server.requests = []


def test_labels_and_scores_in_batches(server: str) -> None:
    t = RemoteTarget(server, api_key=KEY, max_batch=64)
    assert t.capabilities == Capability.LABELS | Capability.SCORES
    assert t.input_spec.n_features == 3
    assert t.classes.tolist() == ["legit", "fraud"]
    pred = t.classes[t.predict(X)]
    np.testing.assert_array_equal(pred, MODEL.predict(X))
    proba = t.predict_proba(X[:10])
    np.testing.assert_allclose(proba[:, 1], MODEL.predict_proba(X[:10])[:, 0])
    assert t.n_queries == 210
    assert [len(r["rows"]) for r in _Server.requests] == [64, 64, 64, 8, 10]
    assert t.describe()["url"] == server


def test_labels_only_server(server: str) -> None:
    _Server.scores = False
    t = RemoteTarget(server, api_key=KEY)
    assert t.capabilities == Capability.LABELS
    with pytest.raises(CapabilityError):
        t.predict_proba(X[:2])
    # Given n_features and classes, the model URL is not asked.
    t2 = RemoteTarget(
        server, api_key=KEY, n_features=3, classes=LABELS, model_url="http://127.0.0.1:9/x"
    )
    assert t2.predict(X[:4]).shape == (4,)


def test_throttling_is_retried(server: str) -> None:
    _Server.mode = "throttle"
    t = RemoteTarget(server, api_key=KEY)
    assert t.predict(X[:5]).shape == (5,)
    assert _Server.throttled == 2
    _Server.throttled = 0
    with pytest.raises(RemoteTargetError, match="HTTP 429"):
        RemoteTarget(server, api_key=KEY, max_retries=1).predict(X[:5])


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", r"HTTP 500.*model crashed"), ("html", "not JSON"), ("short", "got 2 labels")],
)
def test_server_errors_name_the_url(server: str, mode: str, message: str) -> None:
    t = RemoteTarget(server, api_key=KEY)
    _Server.mode = mode
    with pytest.raises(RemoteTargetError, match=message) as info:
        t.predict(X[:3])
    assert server in str(info.value)


def test_auth_timeout_and_bad_urls(server: str) -> None:
    with pytest.raises(RemoteTargetError, match=r"HTTP 401.*API key"):
        RemoteTarget(server).predict(X[:1])
    _Server.mode = "slow"
    with pytest.raises(RemoteTargetError, match="no reply within"):
        RemoteTarget(server, api_key=KEY, timeout=0.1).predict(X[:1])
    with pytest.raises(RemoteTargetError, match="n_features"):
        RemoteTarget(server.replace("/v1/predict", "/v2/predict"), api_key=KEY)
    with pytest.raises(RemoteTargetError, match="cannot connect"):
        RemoteTarget("http://127.0.0.1:9/v1/predict", n_features=3, classes=LABELS).predict(X[:1])
    with pytest.raises(InvalidParameterError, match="url"):
        RemoteTarget("ftp://example.org/predict")


def test_extract_from_a_url(server: str) -> None:
    from mlwarden.theft import extract

    victim = RemoteTarget(server, api_key=KEY)
    result = extract(victim, budget=60, pool=X[:150], test=(X[150:], Y[150:]), random_state=0,
                     surrogate=LogisticRegression())  # fmt: skip
    assert result.queries == 60
    assert result.fidelity > 0.9


def test_mlwarden_target_dispatches_urls(server: str) -> None:
    import mlwarden

    t = mlwarden.target(server, api_key=KEY)
    assert isinstance(t, RemoteTarget)
    np.testing.assert_array_equal(t.classes[t.predict(X[:5])], MODEL.predict(X[:5]))
    from mlwarden.exceptions import MlwardenError

    assert issubclass(RemoteTargetError, MlwardenError)
    assert issubclass(RemoteTargetError, OSError)
