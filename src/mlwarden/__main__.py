"""``python -m mlwarden``: the same as the ``mlwarden`` command."""

from mlwarden.cli import main

main()
