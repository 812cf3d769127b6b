"""`python -m deblur.cli` is the same as the `deblur` command (as when the CLI was the module cli.py)."""

from deblur.cli import main

if __name__ == "__main__":
    main()
