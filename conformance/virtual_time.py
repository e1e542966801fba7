"""``async def`` tests on virtual time, through pytest-asyncio: a pytest plugin.

Turn it on with ``-p conformance.virtual_time`` or ``pytest_plugins = ["conformance.virtual_time"]``
in a ``conftest.py``. Then every test that pytest-asyncio runs (``@pytest.mark.asyncio``, or every
``async def`` test in its auto mode) runs on :class:`simulator.timeloop.VirtualTimeLoop`, given
to pytest-asyncio through its ``pytest_asyncio_loop_factories`` hook: ``await asyncio.sleep(600)``
returns at once, ten simulated minutes later, and a test reads the same times on every run. The
loop's clock starts at ``simulator.world.START`` (1,750,000,000 s, in June 2025), or at the
seconds given by ``@pytest.mark.brh_start(SECONDS)``. A test marked ``@pytest.mark.brh_real_time``
gets asyncio's own loop instead (one that awaits a real socket without
:meth:`~simulator.timeloop.PortableVirtualTimeLoop.real_io`, say).

Fixtures, all named ``brh_...``:

* ``brh_seed``: the seed of the test's world: ``--brh-seed`` of the conformance plugin, else 1;
  a failing test's report names it;
* ``brh_world``: a :class:`simulator.world.World` of that seed (devices, faults, checkers, the
  reference helper by default), closed after the test; ``await brh_world.settle()`` returns its
  findings;
* ``brh_vault``: a :class:`hivevault.FakeVault` stamping with the loop's clock, for tests that
  build helpers themselves.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import pytest_asyncio

from hivevault import FakeVault
from simulator.timeloop import VirtualTimeLoop
from simulator.world import World
from simulator.world.world import START

__all__ = ["brh_seed", "brh_vault", "brh_world"]

FACTORY = "brh_virtual_time"
"""The name of the virtual-time loop factory (``pytest.mark.asyncio(loop_factories=[...])``)."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "brh_start(seconds): the virtual-time loop's clock starts at these seconds since the "
        "epoch (default 1750000000)",
    )
    config.addinivalue_line(
        "markers", "brh_real_time: run this asyncio test on asyncio's own loop, not virtual time"
    )


@pytest.hookimpl(trylast=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Virtual time for every asyncio test, unless it asks for real time. Another plugin's or a
    conftest's implementation of this hook answers first (``trylast``)."""
    if item.get_closest_marker("brh_real_time") is not None:
        return {"asyncio": asyncio.new_event_loop}
    start = START
    marker = item.get_closest_marker("brh_start")
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], int | float):
            raise pytest.UsageError(
                f"{item.nodeid}: brh_start takes one number, seconds since the epoch; "
                f"got {marker.args!r}"
            )
        start = float(marker.args[0])
    return {FACTORY: functools.partial(VirtualTimeLoop, start=start)}


@pytest.fixture
def brh_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's world (``--brh-seed``, default 1)."""
    seed = request.config.getoption("brh_seed", default=None)
    seed = 1 if seed is None else int(seed)
    request.node.add_report_section("setup", "brh", f"world seed {seed}")
    return seed


@pytest_asyncio.fixture
async def brh_world(brh_seed: int) -> AsyncIterator[World]:
    """A simulated world of ``brh_seed`` on the test's virtual-time loop."""
    world = World(brh_seed)
    try:
        yield world
    finally:
        await world.close()


@pytest_asyncio.fixture
async def brh_vault() -> FakeVault:
    """An empty fake vault whose stamps come from the loop's (virtual) clock."""
    loop = asyncio.get_running_loop()
    return FakeVault(clock=loop.time)
