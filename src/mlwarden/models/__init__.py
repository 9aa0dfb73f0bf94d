"""Targets: models wrapped so that attacks can query them (numpy in, numpy out)."""

from mlwarden.models.base import Capability, InputSpec, Target

__all__ = ["Capability", "InputSpec", "Target"]
