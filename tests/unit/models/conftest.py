"""Tiny data sets and fitted models shared by the model-target tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """Single-threaded native code: on tiny inputs, OpenMP start-up and spinning on a busy
    2-core machine cost up to 0.5 s per HistGradientBoosting call (vs. milliseconds)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def data3() -> tuple[np.ndarray, np.ndarray]:
    """300 rows, 6 features, 3 classes labelled 0, 1, 2."""
    X, y = make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    return X, y


@pytest.fixture(scope="session")
def data3_str(data3: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The same rows with string labels."""
    X, y = data3
    return X, np.array(["ant", "bee", "cat"])[y]


@pytest.fixture(scope="session")
def sk_models(data3: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """One fitted instance of each scikit-learn model kind the tests cover."""
    X, y = data3
    with threadpool_limits(1):  # see _one_thread
        return {
            "lr": LogisticRegression(max_iter=500).fit(X, y),
            "hgb": HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y),
            "rf": RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y),
            "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y),
        }


@pytest.fixture(scope="session")
def frame_model(data3: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    """A model fitted on a DataFrame, so it records feature names."""
    X, y = data3
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    return LogisticRegression(max_iter=500).fit(df, y)
