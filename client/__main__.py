"""`python -m client` is `mist`: the entry the standalone bundle is built from (scripts/build_bundle.py)."""

from client.cli import main

if __name__ == "__main__":
    main()
