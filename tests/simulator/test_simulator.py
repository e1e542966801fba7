"""The simulator as a whole: determinism, the reference on swarm seeds, replay files, the
loop, the trace.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from simulator.cli.explore import SwarmConfig, choose_config, read_replay, run_config, write_replay
from simulator.timeloop import VirtualDeadlock, run


def test_same_seed_same_trace(tmp_path: Path) -> None:
    """Determinism: the same seed and code give a byte-identical trace; another seed differs."""
    config = choose_config(12)
    paths = [tmp_path / f"{n}.jsonl" for n in range(3)]
    run_config(config, trace_path=paths[0])
    run_config(config, trace_path=paths[1])
    run_config(choose_config(13), trace_path=paths[2])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert len(paths[0].read_bytes()) > 10_000


@pytest.mark.parametrize("seed", range(1, 9))
def test_the_reference_passes_swarm_seeds(seed: int) -> None:
    """SYNC-1, ORD-2, CB-4, CB-6, RETRY-1, COST-1: random faults and workloads, every checker
    passes on the reference helper."""
    config = choose_config(seed)
    outcome = run_config(config)
    assert outcome.findings == [], (config, [str(f) for f in outcome.findings])
    assert outcome.requests > 50


def test_replay_files_round_trip(tmp_path: Path) -> None:
    """A replay file reruns the exact configuration; a bad one is refused clearly."""
    config = choose_config(5)
    path = write_replay(tmp_path / "r.json", config)
    assert read_replay(path) == config
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ValueError, match="not a brh-sim replay file"):
        read_replay(bad)
    with pytest.raises(ValueError, match="unknown switch 'gremlins'"):
        SwarmConfig.from_json({"seed": 1, "faults": ["gremlins"]})


def test_the_loop_jumps_and_detects_deadlock() -> None:
    """A day passes instantly; waiting on something nobody will ever do is reported."""

    async def sleepy() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(86_400)
        return loop.time() - start

    assert run(sleepy()) == pytest.approx(86_400)

    async def stuck() -> None:
        await asyncio.Event().wait()

    with pytest.raises(VirtualDeadlock):
        run(stuck())


def test_trace_counts_unwritten_events_once_and_writes_wanted_ones(tmp_path: Path) -> None:
    """Traces (issue 3): without a file, wants() counts the event and asks for no fields; with
    a file, it asks for them and emit() counts and writes the line, once; an unknown kind is
    refused either way."""
    from simulator.world.trace import Trace, read

    async def main() -> None:
        quiet = Trace()
        assert quiet.wants("request") is False
        assert quiet.counts["request"] == 1
        written = Trace(tmp_path / "t.jsonl")
        assert written.wants("request") is True
        assert written.counts["request"] == 0
        written.emit("request", device="a", id=1)
        written.close()
        assert written.counts["request"] == 1
        assert [line["kind"] for line in read(tmp_path / "t.jsonl")] == ["request"]
        with pytest.raises(ValueError, match="unknown trace kind"):
            quiet.wants("gossip")

    run(main())
