"""``python -m simulator.cli ...`` is ``brh-sim ...``."""

import sys

from simulator.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
