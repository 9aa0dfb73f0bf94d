"""One module per model-file format; :func:`~.dispatch.dispatch` routes by content.

The public entry points are :func:`mlwarden.supplychain.scan` and
:func:`mlwarden.supplychain.scan_file`; the modules here are internal.
"""

from mlwarden.supplychain.scan.detect import SUPPORTED, Detected, detect

__all__ = ["SUPPORTED", "Detected", "detect"]
