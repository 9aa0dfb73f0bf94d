"""MI-Face model inversion on the 8x8 digits with a tiny torch MLP."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlwarden.data import Dataset, digits  # noqa: E402
from mlwarden.exceptions import (  # noqa: E402
    CapabilityError,
    DataError,
    IncompatibleModelError,
    InvalidParameterError,
)
from mlwarden.models import CallableTarget  # noqa: E402
from mlwarden.models.torch import TorchTarget  # noqa: E402
from mlwarden.privacy.inversion import (  # noqa: E402
    InversionResult,
    ModelInversion,
    inversion_figure,
    inversion_finding,
)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return digits()


@pytest.fixture(scope="module")
def net(data: Dataset) -> torch.nn.Module:
    torch.manual_seed(0)
    X = torch.tensor(data.X, dtype=torch.float32)
    y = torch.tensor(data.labels)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(30):  # full batch: ~95 % training accuracy in well under a second
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    return model


@pytest.fixture(scope="module")
def result(net: torch.nn.Module, data: Dataset) -> InversionResult:
    target = TorchTarget(net, lower=0.0, upper=1.0, classes=np.arange(10))
    return ModelInversion(max_iter=150, step_size=0.1).invert(target, reference=data)


def test_reconstructions_in_range_and_more_confident(result: InversionResult) -> None:
    assert result.reconstructions.shape == (10, 64)
    assert result.reconstructions.min() >= 0.0 and result.reconstructions.max() <= 1.0
    assert np.all(result.confidence > result.start_confidence)
    assert np.all(result.confidence > 0.9)
    assert np.all(result.iterations >= 1) and len(result.stopped_by) == 10
    # Each step queries each active class once, plus start and two confidence passes.
    assert result.queries == 10 * 3 + int(result.iterations.sum())


def test_most_classes_identified(result: InversionResult) -> None:
    assert result.identification_rate is not None and result.identification_rate >= 0.7
    assert result.own_distance is not None and result.nearest_other_distance is not None
    assert result.class_means is not None and result.class_means.shape == (10, 64)
    summary = result.to_dict()
    assert len(summary["own_class_correlation"]) == 10
    finding = inversion_finding(result, target="mlp")
    assert finding.rule_id == "MLW-PRI-003" and not finding.passed
    assert finding.evidence["chance_rate"] == pytest.approx(0.1)
    assert finding.confidence > 0.99
    assert inversion_finding(result, target="mlp", max_identification_rate=1.0).passed


def test_svg_figure(result: InversionResult) -> None:
    svg = inversion_figure(result)
    assert svg.startswith("<svg") and "<title>" in svg and "<image" in svg
    with pytest.raises(InvalidParameterError, match="image_shape"):
        inversion_figure(result, image_shape=(5, 5))


def test_image_shaped_input_with_tv_and_subset_of_classes(
    net: torch.nn.Module, data: Dataset
) -> None:
    target = TorchTarget(
        torch.nn.Sequential(torch.nn.Flatten(), net),
        input_shape=(1, 8, 8),
        lower=0.0,
        upper=1.0,
        classes=np.arange(10),
    )
    attack = ModelInversion(max_iter=20, patience=5, tv_weight=0.01, l2_weight=0.01)
    r = attack.invert(target, classes=[3, 7], reference=data)
    assert r.reconstructions.shape == (2, 1, 8, 8)
    assert r.class_index.tolist() == [3, 7]
    assert np.all(r.iterations <= 20)
    assert inversion_figure(r).startswith("<svg")
    stop = ModelInversion(max_iter=50, cost_threshold=0.5).invert(target, classes=[0])
    assert stop.stopped_by == ("cost_threshold",) and stop.iterations[0] < 50
    assert stop.identified is None and stop.identification_rate is None
    with pytest.raises(InvalidParameterError, match="reference"):
        inversion_finding(stop, target="cnn")


def test_errors(net: torch.nn.Module, data: Dataset) -> None:
    target = TorchTarget(net, lower=0.0, upper=1.0, classes=np.arange(10))
    scores_only = CallableTarget(
        lambda x: torch.softmax(net(torch.tensor(x, dtype=torch.float32)), 1).detach().numpy(),
        n_features=64,
    )
    with pytest.raises(CapabilityError, match="gradients"):
        ModelInversion().invert(scores_only, reference=data)
    assert scores_only.n_queries == 0
    with pytest.raises(InvalidParameterError, match="tv_weight"):
        ModelInversion(tv_weight=0.1).invert(target)
    with pytest.raises(InvalidParameterError, match="step_size"):
        ModelInversion(step_size=0).invert(target)
    with pytest.raises(IncompatibleModelError):
        ModelInversion().invert(target, classes=[11])
    with pytest.raises(DataError, match="no example"):
        ModelInversion().invert(target, classes=[9], reference=data.subset(data.labels < 9))
    assert target.n_queries == 0


def test_patience_stops_a_stalled_descent(net: torch.nn.Module) -> None:
    target = TorchTarget(net, lower=0.0, upper=1.0, classes=np.arange(10))
    # A huge step pins every pixel to a bound at once; the cost then stops improving.
    r = ModelInversion(step_size=1e6, max_iter=50, patience=3).invert(target, classes=[0, 1])
    assert r.stopped_by == ("patience", "patience")
    assert np.all(r.iterations < 50)
    assert set(np.unique(r.reconstructions)) <= {0.0, 0.5, 1.0}
