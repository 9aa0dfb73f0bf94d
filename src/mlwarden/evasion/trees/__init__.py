"""Evasion attacks that read tree ensembles (white-box): an exact MILP and a fast heuristic.

:class:`TreeMILPAttack` finds the minimal-L∞ adversarial example of a small or medium
scikit-learn tree ensemble and proves it minimal (Kantchelian et al., ICML 2016);
:class:`TreeGreedyAttack` is a fast greedy search for large ensembles whose distances
are upper bounds. Both respect the tabular threat model of
:class:`~mlwarden.evasion.threat_model.PerturbationSet` and return a
:class:`TreeAttackResult` with per-row L∞ distances. :func:`read_tree_ensemble` reads a
supported model (:data:`SUPPORTED_MODELS`) into a :class:`TreeEnsemble`.
"""

from mlwarden.evasion.trees.ensemble import (
    SUPPORTED_MODELS,
    TreeAttackResult,
    TreeEnsemble,
    read_tree_ensemble,
)
from mlwarden.evasion.trees.heuristic import TreeGreedyAttack
from mlwarden.evasion.trees.milp import TreeMILPAttack

__all__ = [
    "SUPPORTED_MODELS",
    "TreeAttackResult",
    "TreeEnsemble",
    "TreeGreedyAttack",
    "TreeMILPAttack",
    "read_tree_ensemble",
]
