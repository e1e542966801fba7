"""Which vault a request may use: access tokens mapped to a (user, application) scope.

A real Hive node derives the scope from a signed token (the user's DID and the application's
DID); this development server is told the mapping on its command line instead, one
``--token`` per token:

* ``--token TOKEN`` gives ``TOKEN`` the default scope ``default/default``: several plain tokens
  share one vault, like several devices of one user signed in to one application;
* ``--token TOKEN=USER/APP`` gives ``TOKEN`` the vault of ``USER`` and ``APP`` (any text without
  ``/``, e.g. DIDs): a different user or application sees none of another's data.

Requests carry ``Authorization: token TOKEN``, as Hive expects; anything else is a 401.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from brh.vault import UnauthorizedError

__all__ = ["DEFAULT_SCOPE", "Scope", "TokenTable", "parse_token_spec"]


@dataclass(frozen=True, order=True)
class Scope:
    """One user's vault for one application: a separate set of collections."""

    user: str
    app: str

    def __str__(self) -> str:
        return f"{self.user}/{self.app}"


DEFAULT_SCOPE = Scope("default", "default")
"""The scope of a token given without ``=USER/APP``."""


def _check_part(text: str, what: str, spec: str) -> str:
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        raise ValueError(
            f"--token {spec!r}: the {what} must be non-empty printable text without spaces"
        )
    return text


def parse_token_spec(spec: str) -> tuple[str, Scope]:
    """``"TOKEN"`` or ``"TOKEN=USER/APP"`` as ``(token, scope)``; ``ValueError`` says what is
    wrong."""
    if not isinstance(spec, str):
        raise ValueError(f"--token must be text, got {spec!r}")
    token, has_scope, scope_text = spec.partition("=")
    _check_part(token, "token", spec)
    if not has_scope:
        return token, DEFAULT_SCOPE
    user, has_slash, app = scope_text.partition("/")
    if not has_slash or "/" in app:
        raise ValueError(f"--token {spec!r}: write TOKEN=USER/APP, with exactly one '/'")
    return token, Scope(_check_part(user, "user", spec), _check_part(app, "application", spec))


class TokenTable:
    """The tokens a server accepts and the scope of each."""

    def __init__(self, specs: Iterable[str] = ()) -> None:
        self._scopes: dict[str, Scope] = {}
        for spec in specs:
            self.add(*parse_token_spec(spec))

    def add(self, token: str, scope: Scope) -> None:
        """Accept ``token`` for ``scope``; a token cannot name two scopes."""
        known = self._scopes.get(token)
        if known is not None and known != scope:
            raise ValueError(f"--token {token!r} is given for both {known} and {scope}")
        self._scopes[token] = scope

    def __len__(self) -> int:
        return len(self._scopes)

    def scope_of(self, authorization: str | None) -> Scope:
        """The scope of an ``Authorization`` header's token, or :class:`UnauthorizedError`."""
        if not authorization:
            raise UnauthorizedError(
                "missing Authorization header; send 'Authorization: token <access token>'"
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "token" or not token.strip():
            raise UnauthorizedError(
                "the Authorization header must be 'token <access token>', as Hive expects"
            )
        scope = self._scopes.get(token.strip())
        if scope is None:
            raise UnauthorizedError("unknown or expired access token")
        return scope
