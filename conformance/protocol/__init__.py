"""The out-of-process protocol: any implementation, in any language, as a running process.

``PROTOCOL.md`` (at the repository root) is the specification. Here:

* ``schema.json`` declares every message once; :mod:`~conformance.protocol.messages` validates
  every line against it (with :mod:`~conformance.protocol.validator`) and
  :mod:`~conformance.protocol.docs` renders it as the message reference of ``PROTOCOL.md``;
* :mod:`~conformance.protocol.client` is the harness side: :class:`ProcessHelper` runs an
  implementation as a :class:`simulator.impl.Helper`, :func:`command_factory` builds the factory
  for a command line (what the conformance plugin's ``--brh-cmd`` uses), and
  :mod:`~conformance.protocol.process` runs the implementation's process and its pipes, the one
  part that reads real time (the watchdog of a turn);
* :mod:`~conformance.protocol.reference` is the reference helper speaking the protocol
  (``python -m conformance.protocol.reference``), on the simulator's
  :class:`~simulator.timeloop.VirtualTimeLoop`, whose time the harness sets;
* :mod:`~conformance.protocol.errors` maps the protocol's errors to Python exceptions.
"""
