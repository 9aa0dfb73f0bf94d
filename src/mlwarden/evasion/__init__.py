"""Evasion: adversarial-example attacks under a feasible threat model, and their checks."""

from mlwarden.evasion.apgd import APGD
from mlwarden.evasion.base import AttackResult, EvasionAttack
from mlwarden.evasion.evaluate import RobustnessEvaluation, evaluate
from mlwarden.evasion.fgsm import FGSM
from mlwarden.evasion.hopskipjump import HopSkipJump
from mlwarden.evasion.pgd import PGD
from mlwarden.evasion.square import SquareAttack
from mlwarden.evasion.sweep import SweepPGD
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.evasion.trees import TreeAttackResult, TreeGreedyAttack, TreeMILPAttack

__all__ = [
    "APGD",
    "FGSM",
    "PGD",
    "AttackResult",
    "EvasionAttack",
    "HopSkipJump",
    "PerturbationSet",
    "RobustnessEvaluation",
    "SquareAttack",
    "SweepPGD",
    "TreeAttackResult",
    "TreeGreedyAttack",
    "TreeMILPAttack",
    "evaluate",
]
