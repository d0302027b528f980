"""The `orchestrator-operator` command: run the operator, or check and render offline."""

import click

from orchestrator_operator import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orchestrator-operator")
def main() -> None:
    """Run Serverless Workflows on Kubernetes, or check and render them without a cluster."""


def _register_commands() -> None:
    # Each command lives in its own module and is imported lazily here, so that
    # `orchestrator-operator validate` does not pay for kopf's import.
    from orchestrator_operator.cli import render, run, validate

    main.add_command(run.run)
    main.add_command(validate.validate)
    main.add_command(render.render)


_register_commands()
