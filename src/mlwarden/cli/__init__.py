"""The ``mlwarden`` command line."""


def main() -> None:
    """Entry point of the ``mlwarden`` console script."""
    import sys

    if sys.argv[1:2] == ["scan"]:  # the CI gate starts fast: see mlwarden.cli.scan
        from mlwarden.cli.scan import fast_main

        code = fast_main(sys.argv[2:])
        if code is not None:
            raise SystemExit(code)

    from mlwarden.cli.app import run

    run()
