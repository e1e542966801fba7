"""``python -m simulator.cli ...`` is ``brh-sim ...``."""

from simulator.cli.commands import run

if __name__ == "__main__":
    run()
