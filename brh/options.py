"""The helper's tunable options, validated once."""

from __future__ import annotations

import math
from dataclasses import dataclass

from brh.errors import InvalidArgumentError

__all__ = ["SyncOptions"]


def _seconds(
    name: str, value: object, *, allow_none: bool = False, allow_zero: bool = False
) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value < 0 if allow_zero else value <= 0):  # type: ignore[operator]
        bound = ">= 0" if allow_zero else "> 0"
        extra = " or None" if allow_none else ""
        raise InvalidArgumentError(name, f"must be {bound} seconds{extra}, got {value!r}")


def _count(name: str, value: object, minimum: int, unit: str = "") -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise InvalidArgumentError(name, f"must be an int >= {minimum}{unit}, got {value!r}")


@dataclass(frozen=True)
class SyncOptions:
    """Every option of :class:`brh.BackupRestoreHelper` except the vault, store and identity.

    See the helper's docstring for what each one means; a bad value raises
    :class:`~brh.errors.InvalidArgumentError` naming it.
    """

    debug: bool = False
    log_payloads: bool = False
    auto_sync: bool = True
    debounce: float = 0.05
    page_size: int = 500
    overlap: int = 5
    tombstone_retention: float | None = 30 * 86400
    purge_interval: float = 86400
    full_sync_interval: float | None = 86400
    stuck_threshold: int = 5
    request_deadline: float = 60.0

    def __post_init__(self) -> None:
        _seconds("debounce", self.debounce, allow_zero=True)
        _count("page_size", self.page_size, 1)
        _count("overlap", self.overlap, 0, " seconds")
        _seconds("tombstone_retention", self.tombstone_retention, allow_none=True)
        _seconds("purge_interval", self.purge_interval)
        _seconds("full_sync_interval", self.full_sync_interval, allow_none=True)
        _count("stuck_threshold", self.stuck_threshold, 1)
        _seconds("request_deadline", self.request_deadline)
