"""`python -m openk2` runs the CLI (used to start child servers with the same interpreter)."""

from openk2.cli import main

main()
