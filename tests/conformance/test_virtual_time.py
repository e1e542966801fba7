"""``conformance.virtual_time``: a user's ``async def`` tests run on virtual time through
pytest-asyncio's loop-factory hook, with the ``brh_...`` fixtures (issue 12, pytest-asyncio)."""

from __future__ import annotations

import asyncio

import pytest

from simulator.timeloop import VirtualTimeLoop
from simulator.world import World
from simulator.world.world import START

USER_TESTS = """
import asyncio

import pytest

from simulator.timeloop import VirtualTimeLoop

pytestmark = pytest.mark.asyncio


async def test_ten_simulated_minutes(brh_world, brh_seed):
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop) and brh_seed == 7
    phone, laptop = brh_world.add_device("phone"), brh_world.add_device("laptop")
    brh_world.partition("phone")
    await phone.put("theme", "dark")  # offline: the upload fails and is retried with backoff
    started = loop.time()
    await asyncio.sleep(600)
    assert loop.time() - started == 600
    brh_world.heal("phone")
    await asyncio.sleep(600)  # the retry comes by itself
    await laptop.sync()
    assert laptop.local() == {"theme": "dark"}
    assert not await brh_world.settle()


@pytest.mark.brh_start(0)
async def test_the_clock_starts_where_asked():
    assert asyncio.get_running_loop().time() == 0


@pytest.mark.brh_real_time
async def test_real_time_on_request():
    assert not isinstance(asyncio.get_running_loop(), VirtualTimeLoop)


async def test_a_vault_stamps_with_the_loop(brh_vault):
    await asyncio.sleep(90)
    assert brh_vault._clock() == asyncio.get_running_loop().time()


async def test_a_failure_names_the_seed(brh_world):
    assert False
"""


def test_a_users_async_tests_run_on_virtual_time_with_the_brh_fixtures(
    pytester: pytest.Pytester,
) -> None:
    """Twenty simulated minutes of retries take no wall time to speak of (a real wait would
    time the run out); ``brh_start`` and ``brh_real_time`` choose the loop; a failing test's
    report names its world's seed (``--brh-seed``)."""
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "conformance.virtual_time",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "--brh-seed",
        "7",
    )
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*Captured brh setup*", "world seed 7"])


def test_without_the_plugin_async_tests_keep_asyncio_s_loop(pytester: pytest.Pytester) -> None:
    """The plugin changes nothing unless it is turned on."""
    pytester.makepyfile(
        test_plain="""
import asyncio
import pytest
from simulator.timeloop import VirtualTimeLoop

@pytest.mark.asyncio
async def test_plain():
    assert not isinstance(asyncio.get_running_loop(), VirtualTimeLoop)
"""
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    result.assert_outcomes(passed=1)


def test_a_bad_brh_start_stops_the_run_with_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.asyncio
@pytest.mark.brh_start("noon")
async def test_bad():
    pass
"""
    )
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "conformance.virtual_time",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error: nothing runs
    result.stdout.fnmatch_lines(["*brh_start takes one number, seconds since the epoch*"])


@pytest.mark.asyncio
async def test_this_project_s_own_async_tests_run_on_virtual_time(brh_world: World) -> None:
    """The project's test suite turns the plugin on (pyproject ``addopts``)."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    assert loop.time() == START
    await asyncio.sleep(3600)
    assert brh_world.now() == 3600


def test_the_readme_s_async_example_passes(pytester: pytest.Pytester) -> None:
    """The README's example of an async test on virtual time runs as written."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(
        b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "brh_world" in b
    )
    pytester.makepyfile(test_readme_example=block)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "conformance.virtual_time", "-o", "asyncio_mode=auto"
    )
    result.assert_outcomes(passed=1)
