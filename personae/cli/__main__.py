"""`python -m personae.cli`: the same as the `personae` command."""

from personae.cli import main

main()
