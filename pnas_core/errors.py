"""The one exception type for bad user input; the CLI prints its message on one line."""


class PnasError(Exception):
    """A problem with the user's input (a config key, a file, a cell text) with a message naming it."""
