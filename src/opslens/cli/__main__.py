"""``python -m opslens.cli``: the same as the ``opslens`` command."""

from opslens.cli.app import main

main()
