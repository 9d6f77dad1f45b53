"""``python -m apssh_tui``: same as the apssh-tui command."""

from .cli import console_main

console_main()
