"""Audits: checks (attack + metric + policy) run over targets into a report.

``mlwarden.audit`` is both this package and the :func:`~mlwarden.audit.runner.audit`
function: the package is callable, so ``mlwarden.audit(target, data)`` works whichever
of the two Python bound to the name first.
"""

import sys
import types
from typing import Any

from mlwarden.audit.check import Check, CheckResult
from mlwarden.audit.runner import audit, available_checks, expand_checks, resolve_checks

__all__ = ["Check", "CheckResult", "audit", "available_checks", "expand_checks", "resolve_checks"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
