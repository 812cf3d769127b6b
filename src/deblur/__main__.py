"""`python -m deblur` is the same as the `deblur` command."""

from deblur.cli import main

if __name__ == "__main__":
    main()
