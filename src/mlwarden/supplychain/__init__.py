"""Supply chain: scan model files before anything loads them, load them safely, sign them.

::

    from mlwarden.supplychain import scan, safe_load
    result = scan("model.pt")            # never imports or runs anything from the file
    result.exit_code                     # 0 safe, 1 unsafe, 2 could not scan
    obj = safe_load("model.joblib")      # the scanner's allowlist, enforced while loading

This package imports nothing heavy (no NumPy, torch or TensorFlow) so that
``mlwarden scan`` starts fast.
"""

from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.result import FileResult, ScanIssue, ScanResult, SkippedPath, Verdict

# The function names shadow their modules (``safe_load``), as ``scan`` does: keep these
# imports in this order.
from mlwarden.supplychain.safe_load import load_vetted, safe_load
from mlwarden.supplychain.scanner import scan, scan_file

__all__ = [
    "FileResult",
    "Policy",
    "ScanIssue",
    "ScanResult",
    "SkippedPath",
    "Verdict",
    "load_vetted",
    "safe_load",
    "scan",
    "scan_file",
]
