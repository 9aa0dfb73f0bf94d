"""The :class:`Check` base class: attacks + metrics + a policy threshold → findings.

Checks follow scikit-learn's rules: ``__init__`` takes keyword-only
hyper-parameters and only stores them; validation happens in :meth:`Check.validate`,
which :func:`~mlwarden.audit.runner.audit` calls for every (target, check) pair
before any check runs, so a bad parameter or a missing capability fails fast.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mlwarden._progress import ProgressCallback
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import CapabilityError, DataError
from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Rule, ThreatFamily
from mlwarden.models.base import Capability, Target

__all__ = ["Check", "CheckResult", "check_training_rows", "retrain_skip_reason"]


@dataclass
class CheckResult:
    """What one check produced for one target."""

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


class Check(ABC):
    """Base class of every audit check.

    Class attributes
    ----------------
    family : ThreatFamily
        Threat family, used by ``--checks evasion``.
    rules : tuple of Rule
        The rules this check can report.
    requires : Capability
        Capabilities the target must offer; otherwise the check is skipped.
    summary : str
        One line for ``mlwarden audit --help`` and reports.
    """

    registered_name: ClassVar[str] = ""
    family: ClassVar[ThreatFamily]
    rules: ClassVar[tuple[Rule, ...]] = ()
    requires: ClassVar[Capability] = Capability.LABELS
    summary: ClassVar[str] = ""
    needs: ClassVar[str] = ""
    """What the check needs from a model, in words, when ``requires`` does not say it all."""
    per_data: ClassVar[bool] = False
    """True for checks of the data alone (not of a model): the audit runs them once per
    data set, with the first model they apply to, instead of once per model."""

    # ------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind is inspect.Parameter.KEYWORD_ONLY
        ]

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__`` (scikit-learn style)."""
        return {name: getattr(self, name) for name in self._param_names()}

    @property
    def id(self) -> str:
        """The registered name, e.g. ``evasion.pgd``."""
        return self.registered_name or type(self).__name__

    # ------------------------------------------------------------ life cycle
    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        """Why this check does not apply to ``target``, or ``None`` if it does.

        The default skips targets lacking :attr:`requires`.
        """
        missing = self.requires & ~target.capabilities
        if missing:
            return (
                f"needs {', '.join(missing.names())}; {target.name!r} offers "
                f"{', '.join(target.capabilities.names()) or 'nothing'}"
            )
        return None

    def validate(self, target: Target, data: Dataset) -> None:
        """Raise before any work if parameters, target or data cannot be used.

        Subclasses extend it; the base checks the required capabilities and that the
        check applies (:meth:`require_applicable`), and that data is labelled.
        """
        target.require(self.requires, by=f"check {self.id!r}")
        self.require_applicable(target, data)
        data.labels  # noqa: B018 - raises DataError when unlabelled

    def require_applicable(self, target: Target, data: Dataset) -> None:
        """Raise :class:`~mlwarden.exceptions.CapabilityError`, in :meth:`skip_reason`'s
        words, when the check does not apply to ``target`` and ``data``."""
        reason = self.skip_reason(target, data)
        if reason is not None:
            raise CapabilityError(f"check {self.id!r}: {reason}")

    @abstractmethod
    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        """Run the check on one target and return its findings and metrics."""


def retrain_skip_reason(target: Target, trainer: object, what: str) -> str | None:
    """Why a check that retrains ``target`` cannot (no trainer and no estimator to clone).

    ``what`` completes "needs a way to retrain ...", e.g. ``"reference models like
    'm'"``.
    """
    if trainer is None and getattr(target, "estimator", None) is None:
        return (
            f"needs a way to retrain {what}: a scikit-learn model (cloned) or a training "
            "function (check parameter 'trainer'); a torch or ONNX file alone does not say "
            "how it was trained"
        )
    return None


def check_training_rows(owner: str, members: Dataset | None, data: Dataset) -> None:
    """Raise when the training rows (``members``) do not fit the audit data: another
    feature count, or no labels."""
    if members is None:
        return
    if members.n_features != data.n_features:
        raise DataError(
            f"{owner}: the training rows have {members.n_features} features, "
            f"the audit data {data.n_features}"
        )
    members.labels  # noqa: B018 - raises DataError when unlabelled
