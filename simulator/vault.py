"""Moved: the fake vault is :mod:`hivevault` now (``from hivevault import FakeVault``).

The simulator and the development vault (``vaultd``) share it, so it lives in a package of its
own that neither of them owns. This module only keeps ``simulator.vault.FakeVault``, the path
older code and earlier READMEs used, working; new code imports from :mod:`hivevault`.
"""

from hivevault.vault import MAX_DOCUMENT_BYTES, FakeVault, VaultJournal, VaultRequest

__all__ = ["MAX_DOCUMENT_BYTES", "FakeVault", "VaultJournal", "VaultRequest"]
