"""The protocol's two error models in Python terms, both ways.

* A failed vault or callback request is answered with a ``RequestError`` (``kind``,
  ``message``, ``definite``...): :func:`request_error_to_wire` builds it from a
  :class:`brh.vault.VaultError` (harness side), :func:`request_error_from_wire` turns it back
  into one (implementation side).
* A failed command is answered with a ``CommandError`` (``kind``, ``argument``, ``message``):
  :func:`command_error_to_wire` builds it from a :class:`brh.BrhError` (the reference side),
  :func:`command_error_from_wire` turns it into the matching ``brh`` exception (harness side), so
  a test catches ``InvalidArgumentError`` whichever implementation runs.

``definite`` is true when the request certainly did not take effect: every error the vault
answered with, except a server error (a server may fail after applying a write, as the
simulator's ``server_errors(after=...)`` does); a network error says for itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from brh import (
    BrhError,
    HelperClosedError,
    InvalidArgumentError,
    ReentrantCallError,
    UnknownContextError,
)
from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    InvalidParameterError,
    NetworkError,
    ServerError,
    UnauthorizedError,
    VaultError,
    VaultFrozenError,
    VaultNotFoundError,
)

__all__ = [
    "CallbackRaisedError",
    "ImplementationError",
    "command_error_from_wire",
    "command_error_to_wire",
    "request_error_from_wire",
    "request_error_to_wire",
]

_VAULT_KINDS: dict[str, type[VaultError]] = {
    "collection_not_found": CollectionNotFoundError,
    "already_exists": AlreadyExistsError,
    "vault_not_found": VaultNotFoundError,
    "frozen": VaultFrozenError,
    "unauthorized": UnauthorizedError,
    "invalid_parameter": InvalidParameterError,
}


class CallbackRaisedError(Exception):
    """The app's callback failed (a ``callback_raised`` reply): the change counts as refused."""


class ImplementationError(BrhError, RuntimeError):
    """A command failed for a reason other than bad input, re-entrancy or a closed helper."""


def request_error_to_wire(error: BaseException) -> dict[str, Any]:
    """The ``RequestError`` answering a request that raised ``error`` (a vault error, or for a
    callback whatever the app's callback raised)."""
    if not isinstance(error, VaultError):
        return {
            "kind": "callback_raised",
            "message": f"{type(error).__name__}: {error}",
            "definite": True,
        }
    if isinstance(error, NetworkError):
        kind, definite = "network", error.definite
    elif isinstance(error, ServerError):
        kind, definite = "server", False
    else:
        kind = next((k for k, cls in _VAULT_KINDS.items() if isinstance(error, cls)), "server")
        definite = kind != "server"
    return {
        "kind": kind,
        "message": error.message or type(error).__name__,
        "definite": definite,
        "status": error.status,
        "internal_code": error.internal_code,
    }


def request_error_from_wire(error: Mapping[str, Any]) -> Exception:
    """The exception a ``RequestError`` stands for."""
    kind, message = error["kind"], error["message"]
    code = error.get("internal_code")
    if kind == "network":
        return NetworkError(message, definite=bool(error["definite"]))
    if kind == "server":
        return ServerError(message, status=error.get("status") or 500, internal_code=code)
    if kind == "callback_raised":
        return CallbackRaisedError(message)
    return _VAULT_KINDS[kind](message, internal_code=code)


def command_error_to_wire(
    error: BaseException, renamed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``CommandError`` of a command that raised ``error``; ``renamed`` maps the Python
    parameter names to the command's argument names (``add_sync_context``'s ``name`` is
    ``add_context``'s ``context``)."""
    if isinstance(error, InvalidArgumentError):
        kind = "unknown_context" if isinstance(error, UnknownContextError) else "invalid_argument"
        argument = (renamed or {}).get(error.argument, error.argument)
        return {"kind": kind, "argument": argument, "message": error.problem}
    if isinstance(error, ReentrantCallError):
        return {"kind": "reentrant", "message": str(error)}
    if isinstance(error, HelperClosedError):
        return {"kind": "closed", "message": str(error)}
    return {"kind": "failed", "message": f"{type(error).__name__}: {error}"}


class _RemoteUnknownContextError(UnknownContextError):
    """An unknown context reported by another process, with that process's wording."""

    def __init__(self, context: str, problem: str) -> None:
        InvalidArgumentError.__init__(self, "context", problem)
        self.context = context


def command_error_from_wire(error: Mapping[str, Any], args: Mapping[str, Any]) -> BrhError:
    """The ``brh`` exception a ``CommandError`` stands for (``args``: the command's)."""
    kind, message = error["kind"], error["message"]
    if kind == "unknown_context":
        return _RemoteUnknownContextError(str(args.get("context")), message)
    if kind == "invalid_argument":
        return InvalidArgumentError(error.get("argument", "(not named)"), message)
    if kind == "reentrant":
        return ReentrantCallError(message)
    if kind == "closed":
        return HelperClosedError(message)
    return ImplementationError(message)
