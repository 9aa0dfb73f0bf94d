"""Test-session set-up shared by every test folder.

Attacks and tiny models send many small batches; OpenMP and torch thread pools then cost
far more than they save and thrash on a busy 2-core CI machine. Like the CLI, the test
session runs them on one thread (set before any test module imports torch or sklearn).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
