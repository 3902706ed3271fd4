"""The `nudgeflow` command (Typer): a thin shell over the rooms."""
