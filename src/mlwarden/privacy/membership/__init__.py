"""Membership inference: does a model reveal which records it was trained on?

Attacks (one per module): :class:`LossThreshold` (Yeom et al. 2018, target only),
:class:`LiRA` (Carlini et al. 2022, online/offline), :class:`RMIA` (Zarifzadeh et al.
2024) and :class:`LabelOnly` (Choquette-Choo et al. 2021, labels only). The reference-model
attacks share one fitted :class:`~mlwarden.privacy.reference.ReferenceModels`. Each
returns a :class:`MembershipResult` with per-record scores and
:mod:`mlwarden.privacy.metrics`.

Threat model: see each attack; the auditor knows which candidate records were members.
"""

from mlwarden.privacy.membership.base import MembershipAttack, MembershipResult
from mlwarden.privacy.membership.label_only import LabelOnly
from mlwarden.privacy.membership.lira import LiRA
from mlwarden.privacy.membership.rmia import RMIA
from mlwarden.privacy.membership.threshold import LossThreshold

__all__ = ["RMIA", "LabelOnly", "LiRA", "LossThreshold", "MembershipAttack", "MembershipResult"]
