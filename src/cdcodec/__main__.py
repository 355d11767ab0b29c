"""`python -m cdcodec` runs the same command-line tool as the `cdcodec` script."""

from cdcodec.cli.main import main

if __name__ == "__main__":
    main()
