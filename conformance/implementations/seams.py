"""How a mutant is built: the reference helper with one seam changed (see :mod:`.mutants`).

:func:`build` makes the reference for an installation with other :class:`brh.core.Rules`, on
another kind of :class:`brh.store.LocalStore`, or with other constructor options; :func:`with_rules`
is the factory of the reference with some rules changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from brh import BackupRestoreHelper
from brh.core import RULES, Rules
from brh.store import LocalStore
from simulator.impl import Installation, ReferenceHelper

__all__ = ["OwnStoreHelper", "build", "with_rules"]


class OwnStoreHelper(ReferenceHelper):
    """The reference on a store the mutant opened: closed with the helper."""

    async def close(self) -> None:
        await super().close()
        self.brh.store.close()


def build(
    installation: Installation,
    *,
    rules: Rules = RULES,
    store: type[LocalStore] = LocalStore,
    **options: Any,
) -> ReferenceHelper:
    """The reference helper for ``installation``, with these rules, on this kind of store, with
    these constructor ``options`` over the installation's."""
    installation.store.mkdir(parents=True, exist_ok=True)
    path = installation.store / "brh.sqlite3"
    helper = BackupRestoreHelper(
        installation.vault,
        path if store is LocalStore else store(path),
        device_id=installation.device_id,
        clock=installation.clock,
        rng=installation.rng,
        rules=rules,
        **{**installation.options, **options},
    )
    return ReferenceHelper(helper) if store is LocalStore else OwnStoreHelper(helper)


def with_rules(**changes: Any) -> Callable[[Installation], ReferenceHelper]:
    """A factory of the reference whose rules have ``changes``."""
    rules = replace(RULES, **changes)
    return lambda installation: build(installation, rules=rules)
