"""PROTOCOL.md and the schema cannot drift apart: the message reference is generated from
schema.json, and the worked transcripts are checked message by message."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.protocol import docs
from conformance.protocol.messages import COMMANDS, SCHEMA, VAULT_OPS, Sender, check_message
from conformance.protocol.validator import validate

TEXT = docs.PROTOCOL_MD.read_text(encoding="utf-8")


def test_the_message_reference_is_generated_from_the_schema() -> None:
    """Fails when PROTOCOL.md's message reference differs from what schema.json generates:
    run `python -m conformance.protocol.docs` after changing the schema."""
    assert docs.section(TEXT) == docs.reference(SCHEMA), (
        "PROTOCOL.md's message reference is out of date; run python -m conformance.protocol.docs"
    )


def test_a_schema_change_shows_in_the_reference() -> None:
    """The drift check bites: a new field in a message changes the generated text."""
    changed = copy.deepcopy(SCHEMA)
    idle = changed["messages"]["implementation"]["idle"]["schema"]
    idle["properties"]["reason"] = {"type": "string", "description": "Why it is idle."}
    assert docs.reference(changed) != docs.section(TEXT)
    assert "| `reason` | string | no | Why it is idle. |" in docs.reference(changed)


def test_the_generator_rewrites_only_its_section(tmp_path: Path) -> None:
    path = tmp_path / "PROTOCOL.md"
    stale = TEXT.replace("| `wake_at` |", "| `wakeAt` |")
    path.write_text(stale, encoding="utf-8")
    assert docs.main(["--check", str(path)]) == 1
    assert docs.main([str(path)]) == 0
    assert path.read_text(encoding="utf-8") == TEXT
    assert docs.main(["--check", str(path)]) == 0
    path.write_text("# no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="BEGIN and END MESSAGE REFERENCE markers"):
        docs.main(["--check", str(path)])


def test_everything_declared_is_documented() -> None:
    for sender, declared in SCHEMA["messages"].items():
        for kind in declared:
            assert f'<a id="{sender}-{kind}"></a>' in TEXT
    for name in COMMANDS:
        assert f'<a id="command-{name}"></a>' in TEXT
    for op in VAULT_OPS:
        assert f'<a id="vault-{op}"></a>' in TEXT


def transcripts() -> list[list[tuple[str, dict[str, Any]]]]:
    """The worked transcripts: each ```text block made of '>' and '<' lines."""
    found = []
    for block in re.findall(r"```text\n(.*?)```", TEXT, flags=re.S):
        lines = [line for line in block.splitlines() if line[:2] in ("> ", "< ")]
        if lines:
            found.append([(line[0], json.loads(line[2:])) for line in lines])
    return found


def test_the_worked_transcripts_follow_the_protocol() -> None:
    """Every line is a valid message from its sender; every turn ends with one idle; every
    reply answers a waiting request with that operation's value, every result a command."""
    sessions = transcripts()
    assert len(sessions) == 2
    for session in sessions:
        requests: dict[int, str] = {}
        commands: dict[int, str] = {}
        in_turn = False
        mono = float("-inf")
        for direction, message in session:
            sender: Sender = "harness" if direction == ">" else "implementation"
            check_message(sender, message)
            kind = message["type"]
            if sender == "harness":
                assert not in_turn, f"a harness message before the idle: {message}"
                in_turn = True
                assert message["mono"] >= mono
                mono = message["mono"]
                if kind == "command":
                    commands[message["id"]] = message["name"]
                elif kind == "reply":
                    op = requests.pop(message["id"])
                    if message["ok"]:
                        schema = {"type": "boolean"} if op == "callback" else VAULT_OPS[op]["value"]
                        validate(message["value"], schema, SCHEMA)
                continue
            assert in_turn, f"the implementation wrote between turns: {message}"
            if kind == "idle":
                in_turn = False
            elif kind in ("vault", "callback"):
                assert message["id"] not in requests
                requests[message["id"]] = message.get("op", "callback")
            elif kind == "result":
                name = commands.pop(message["id"])
                if message["ok"]:
                    validate(message["value"], COMMANDS[name]["value"], SCHEMA)
        assert not in_turn and not requests, "a session ends idle, every request answered"
