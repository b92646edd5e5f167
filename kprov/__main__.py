"""Allow ``python -m kprov``."""

from kprov.cli.main import run

run()
