"""The ``mlwarden`` command line."""


def main() -> None:
    """Entry point of the ``mlwarden`` console script."""
    from mlwarden.cli.app import run

    run()
