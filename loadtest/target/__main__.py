"""``python -m loadtest.target …``: the same command as ``loadtest serve``."""

from loadtest.target.command import serve

if __name__ == "__main__":
    serve(prog_name="loadtest serve")
