"""The one error the CLI prints plainly."""


class CliError(Exception):
    """Something the user can fix; printed without a traceback."""
