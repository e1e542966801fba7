"""The settle phase (``World.settle``) does not hide gaps (issue 10, item 3).

It syncs incrementally until quiet and checks convergence then; the forced full pass that
follows may repair only what the SPEC lets a full pass repair (SYNC-11, DEL-3, API-3). A key
that reached a device only through that forced pass, with none of those to explain it, is a
SYNC-4 finding naming the key.
"""

from __future__ import annotations

from pathlib import Path

from conformance.implementations import mutants
from simulator.impl import Factory, reference_factory
from simulator.timeloop import run
from simulator.world import START, World
from simulator.world.checkers import Finding


def _settled(factory: Factory, tmp_path: Path, scenario: str) -> list[Finding]:
    async def main() -> list[Finding]:
        world = World(3, factory=factory, workdir=tmp_path)
        try:
            # the phone's clock runs an hour ahead; the laptop's is right
            phone = world.add_device("phone", offset=3600.0)
            laptop = world.add_device("laptop")
            await phone.sync()
            await laptop.sync()
            await world.advance(10)
            if scenario == "missed":
                await laptop.put("shopping", ["milk"])
                await laptop.sync()
                await world.advance(10)
            elif scenario == "forgotten":
                await laptop.put("shopping", ["milk"])
                await laptop.sync()
                await world.advance(10)
                await phone.sync()
                await world.forget("phone", "shopping")
            elif scenario == "vault clock":
                world.jump_clock("vault", -3600.0)
                await laptop.put("shopping", ["milk"])
                await laptop.sync()
                await world.advance(10)
            return await world.settle()
        finally:
            await world.close()

    return run(main(), start=START)


def test_a_key_only_a_forced_full_pass_delivers_is_a_finding(tmp_path: Path) -> None:
    """SYNC-4 (issue 10, item 3): a helper whose incremental pulls skip a write (its cursor is
    the device clock, an hour ahead of the vault's stamps) fails the settle, naming the key,
    although the settle's full pass would have repaired it; the reference passes the same run."""
    found = _settled(mutants.device_clock_cursor, tmp_path / "mutant", "missed")
    gaps = [f for f in found if f.checker == "settle" and f.clause == "SYNC-4"]
    assert gaps, [str(f) for f in found]
    assert gaps[0].device == "phone" and "'shopping'" in gaps[0].message, str(gaps[0])
    assert not _settled(reference_factory, tmp_path / "reference", "missed")


def test_a_locally_only_delete_may_come_back_through_the_full_pass(tmp_path: Path) -> None:
    """API-3: a key deleted locally_only comes back by a full pass, which is no finding."""
    assert not _settled(reference_factory, tmp_path, "forgotten")


def test_a_vault_clock_stepped_back_may_need_the_full_pass(tmp_path: Path) -> None:
    """SYNC-11: after the vault's clock stepped back by more than the overlap, what it stamped
    below a cursor arrives by the (periodic) full pass: no finding, even for the mutant whose
    cursor runs ahead anyway."""
    assert not _settled(reference_factory, tmp_path / "reference", "vault clock")
    found = _settled(mutants.device_clock_cursor, tmp_path / "mutant", "vault clock")
    assert not [f for f in found if f.clause == "SYNC-4"], [str(f) for f in found]
