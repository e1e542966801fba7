"""``python -m simulator.demo``: the guided story of three devices. It lives in
:mod:`simulator.cli.demo`; this module keeps the command the README gives."""

import sys

from simulator.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
