"""Typer commands: parse options, call the core, render the result. Nothing else."""
