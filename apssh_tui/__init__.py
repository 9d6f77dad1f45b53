"""apssh-tui: a Textual application to run, watch and steer apssh scenarios."""
