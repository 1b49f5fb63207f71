"""Subcommands of the ``precodec`` CLI, one module each (see :data:`precodec.cli.COMMANDS`)."""
