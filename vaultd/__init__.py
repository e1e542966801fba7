"""vaultd: a Hive vault for tests and development, served over HTTP (``brh-vault serve``).

It speaks Hive Node v2's database REST API (the one :class:`brh.hive.HiveVault` talks to), with
the semantics of :class:`hivevault.FakeVault` (the fake vault the simulator runs on too; vaultd
imports only :mod:`brh` and :mod:`hivevault`), stored durably in SQLite:

* :mod:`vaultd.tokens`: which access token opens which (user, application) vault;
* :mod:`vaultd.store`: the SQLite file and the fake vault of each scope, kept in step, and the
  worker threads operations run in;
* :mod:`vaultd.app`: the Starlette app (endpoints, status codes, error bodies, body limits);
* :mod:`vaultd.faultproxy`: a proxy that breaks some requests on their way to a vault (500s,
  bodies that are not JSON, resets, slow drips, 401s), for tests and soaks (``brh-vault proxy``);
* :mod:`vaultd.limits`: what one request and one connection may cost;
* :mod:`vaultd.connections`: uvicorn's protocol with a header timeout and a connection bound;
* :mod:`vaultd.cli`: the ``brh-vault`` command.

It is not a production Hive node: no DID sign-in (tokens are given on the command line), no
subscriptions, quotas, files or scripting, one process, everything in memory as well as on disk.
"""
