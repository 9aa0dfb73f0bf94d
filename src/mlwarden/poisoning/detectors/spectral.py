"""Spectral signatures: poisoned rows stand out along the top singular direction.

Reference: Tran, Li and Madry, "Spectral Signatures in Backdoor Attacks" (NeurIPS 2018).

Threat model: a share of the training rows of some class carries a backdoor trigger
(dirty- or clean-label, ATLAS AML.T0020 / AML.T0018.000). A network trained on the data
learns a feature for the trigger; within the attacker's class, the poisoned rows'
representations then differ from the clean ones along the top singular vector of the
centred representation matrix. The score of row *i* of class *c* is its squared
projection on that vector, ``((r_i - mean_c) . v_c)^2``. Tran et al. remove the
``1.5 * epsilon * n_c`` highest-scoring rows of each class, where ``epsilon`` is an
upper bound on the poison rate: so the detector flags rows in every class, clean ones
included, and is best read as a ranking; :class:`ActivationClustering` decides which
class is poisoned.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_number
from mlwarden.data.dataset import Dataset
from mlwarden.poisoning.detectors._common import class_codes, get_representations, show
from mlwarden.poisoning.detectors._result import DetectionResult

__all__ = ["SpectralSignature", "spectral_scores"]

_OWNER = "SpectralSignature"


def spectral_scores(representations: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Squared projection of each centred row on the top right singular vector."""
    R = np.asarray(representations, dtype=np.float64)
    if len(R) < 2:
        return np.zeros(len(R))
    centred = R - R.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return np.asarray((centred @ vt[0]) ** 2, dtype=np.float64)


class SpectralSignature:
    """Score rows by spectral signature, class by class (Tran et al. 2018).

    Parameters
    ----------
    expected_rate : float, default=0.05
        Upper bound on the share of poisoned rows (epsilon in the paper).
    multiplier : float, default=1.5
        Flag the ``multiplier * expected_rate * n_c`` top-scoring rows of each class.
    random_state : int, Generator or None
        Seed of the network trained for representations when none are given.
    """

    def __init__(
        self,
        *,
        expected_rate: float = 0.05,
        multiplier: float = 1.5,
        random_state: RandomState = None,
    ) -> None:
        self.expected_rate = expected_rate
        self.multiplier = multiplier
        self.random_state = random_state

    def detect(
        self, data: Dataset, *, representations: npt.ArrayLike | None = None
    ) -> DetectionResult:
        """Score every row of ``data``.

        Parameters
        ----------
        data : Dataset
            Labelled training data.
        representations : array-like of shape (n_samples, k), optional
            A network's penultimate-layer activations for each row; default: those of a
            small MLP trained on ``data``.
        """
        rate = check_number(_OWNER, "expected_rate", self.expected_rate, low=0, high=1,
                            low_open=True)  # fmt: skip
        mult = check_number(_OWNER, "multiplier", self.multiplier, low=0, low_open=True)
        seed = int(as_generator(self.random_state).integers(2**31))
        reps = get_representations(_OWNER, data, representations, seed=seed)
        classes, codes = class_codes(data)
        scores = np.zeros(data.n_samples)
        flagged = np.zeros(data.n_samples, dtype=bool)
        reasons: dict[int, str] = {}
        for c in range(len(classes)):
            idx = np.flatnonzero(codes == c)
            s = spectral_scores(reps[idx])
            # Scale by the class's median so that scores compare across classes.
            scores[idx] = s / max(float(np.median(s)), 1e-12)
            k = min(len(idx), math.ceil(mult * rate * len(idx)))
            top = idx[np.argsort(-s, kind="stable")[:k]]
            flagged[top] = True
            for i in top:
                reasons[int(i)] = (
                    f"spectral signature: among the top {k} of class {show(classes[c])} along "
                    "the top singular direction of the network's representations"
                )
        return DetectionResult(
            detector="spectral-signature",
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            details={"expected_rate": rate, "multiplier": mult},
        )
