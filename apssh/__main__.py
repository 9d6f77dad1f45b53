"""``python -m apssh``: the apssh command (as in apssh 0.27)."""

from .cli import apssh_main

if __name__ == "__main__":
    apssh_main()
