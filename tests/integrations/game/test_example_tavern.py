"""examples/game/tavern.py: the scripted visit runs offline end to end; the game's rules hold."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from personae.personas.loading import load_persona

ROOT = Path(__file__).resolve().parents[3]
TAVERN = ROOT / "examples" / "game" / "tavern.py"
INNKEEPER = ROOT / "examples" / "personas" / "innkeeper.yaml"


def load_tavern() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tavern_example", TAVERN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def last_sentence(reply: str) -> str:
    return re.split(r"(?<=[.!?])\s+", reply)[-1]


def first_sentence(reply: str) -> str:
    return re.split(r"(?<=[.!?])\s+", reply)[0]


@pytest.mark.slow
def test_demo_visit_sells_a_room_refuses_and_comes_back(tmp_path: Path) -> None:
    save = tmp_path / "save.json"
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(TAVERN), "--demo", "--save", str(save)],
                          capture_output=True, text=True, env=env, timeout=280, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = proc.stdout
    persona = load_persona(INNKEEPER)
    replies = {e.user: e.reply for e in persona.examples}
    # Brenna offers the room, in her authored words, sentence by sentence.
    assert last_sentence(replies["Do you have a room for the night?"]) in out
    # The game takes the coins for the room and tells her.
    assert "[Ana paid 2 silver for 1 night(s)]" in out
    # She will not let the player into the cellar.
    assert last_sentence(replies["What's down in your cellar?"]) in out
    # Asked for what she cannot do, she deflects with one of her own lines.
    assert any(first_sentence(line) in out for line in persona.fallbacks)
    # The next day, in a new server process, the save is loaded back.
    assert "The save is loaded: brenna-innkeeper" in out
    assert last_sentence(replies["Goodbye!"]) in out
    assert out.rstrip().endswith("You leave with 1 silver, 6 copper and room_key.")
    saved = json.loads(save.read_text())
    assert saved["player"]["nights"] == 1 and saved["npcs"]
    assert "Traceback" not in proc.stderr


def test_the_game_refuses_what_the_purse_cannot_pay(tmp_path: Path) -> None:
    tavern = load_tavern()
    args: Any = type("Args", (), {"name": "Ana", "connect": None, "model": None,
                                  "timeout": 5.0})()
    game = tavern.Tavern(args, tmp_path / "save.json")
    game.player.copper = 25
    ok, detail = game.carry_out("rent_room", {"nights": 2})
    assert not ok and "2 silver, 5 copper" in detail and game.player.copper == 25
    ok, detail = game.carry_out("rent_room", {"nights": 1})
    assert ok and game.player.copper == 5 and "room_key" in game.player.items
    ok, _ = game.carry_out("give_item", {"item": "stew", "quantity": 2})
    assert not ok and game.player.copper == 5
    ok, _ = game.carry_out("give_item", {"item": "ale", "quantity": 2})
    assert ok and game.player.copper == 1 and game.player.items.count("ale") == 2
    ok, detail = game.carry_out("open_cellar", {})
    assert not ok and "open_cellar" in detail


def test_the_scene_offers_only_the_innkeepers_actions() -> None:
    tavern = load_tavern()
    persona = load_persona(INNKEEPER)
    world = tavern.scene(tavern.Player())
    offered = {a["action"] for a in world["affordances"]}
    assert offered <= {a.name for a in persona.actions}
    from personae.integrations.game.protocol import World

    World(id="w", **world)  # a valid `world` snapshot
