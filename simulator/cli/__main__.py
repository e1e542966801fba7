"""``python -m simulator.cli ...`` is ``brh-sim ...``."""

from simulator.cli import run

if __name__ == "__main__":
    run()
