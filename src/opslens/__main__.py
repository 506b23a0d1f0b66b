"""``python -m opslens``: the ``opslens`` command."""

from opslens.cli.app import main

if __name__ == "__main__":
    main()
