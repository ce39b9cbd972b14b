"""The ``mailsrv`` subcommands; ``mailsrv.__main__`` builds the parser and dispatches."""
