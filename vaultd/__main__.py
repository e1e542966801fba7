"""``python -m vaultd`` is ``brh-vault``."""

import sys

from vaultd.cli import main

sys.exit(main())
