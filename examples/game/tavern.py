"""The Copper Kettle: a small text scene with Brenna the innkeeper as an NPC.

The game is this script; Brenna is a persona served by `personae game
--stdio`, which the script starts itself and talks to with
`personae/integrations/game/client.py` (one file of standard-library
Python, the kind a Ren'Py or pygame game copies in). It runs offline:
without a model configured, Brenna answers with the lines her persona file
gives her.

What it shows:

- the game tells the NPC where she is, who is present and what she may do
  (`world` with affordances `rent_room` and `give_item`);
- she sells a room: when the model calls `rent_room` the game takes the
  coins (or refuses if the purse is short) and reports back with
  `action_result`; with the offline model, `/rent` pays at the counter and
  she is told through an `event`;
- she refuses what she cannot or will not do (the cellar, magic);
- she remembers the player: the game saves her state in its save file,
  and after a night away loads it back in a new server process.

    python examples/game/tavern.py                 # play; /help lists the commands
    python examples/game/tavern.py --demo          # a scripted visit, no input needed
    python examples/game/tavern.py --model openai:gpt-4o-mini
    python examples/game/tavern.py --connect 127.0.0.1:7777   # a running `personae game serve`
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
PERSONA = ROOT / "examples" / "personas" / "innkeeper.yaml"


def _load_client() -> Any:
    # A game ships a copy of this one file; loading it by path does the same here,
    # without importing the rest of personae into the game.
    path = ROOT / "personae" / "integrations" / "game" / "client.py"
    spec = importlib.util.spec_from_file_location("personae_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


personae_client = _load_client()
PersonaeClient = personae_client.PersonaeClient
ServerError = personae_client.ServerError
NPC = "brenna-innkeeper"
WORLD = "millbrook"

# Prices in copper; ten copper make a silver.
PRICES = {"ale": 2, "cider": 3, "tea": 1, "stew": 3, "bread": 1, "trout": 5, "room_key": 20}
ROOM_PER_NIGHT = 20

DEMO = [
    "Good evening!",
    "Do you have a room for the night?",
    "/rent",
    "What's down in your cellar? Let me have a look.",
    "Can you magic my sore feet away?",
    "/leave",
    "Thank you, Brenna.",
    "Goodbye!",
    "/quit",
]


@dataclass
class Player:
    """The game's own state: what a save file of this game holds."""

    name: str = "Ana"
    copper: int = 36
    items: list[str] = field(default_factory=list)
    nights: int = 0
    day: int = 1

    def purse(self) -> str:
        """Return the coins as the game shows them."""
        return f"{self.copper // 10} silver, {self.copper % 10} copper"


def scene(player: Player) -> dict[str, Any]:
    """Return what Brenna can perceive and do now, as a `world` snapshot."""
    evening = player.day == 1
    return {
        "location": "The common room of the Copper Kettle inn, Millbrook",
        "time": f"Day {player.day}, {'evening' if evening else 'morning'}",
        "weather": "Rain on the shutters" if evening else "A grey, dry morning",
        "actors": [
            {"id": "player", "name": player.name,
             "description": "A road-dusty traveller with a pack and a walking stick."},
            {"id": "old-tam", "name": "Old Tam",
             "description": "A fisherman asleep by the fire."},
        ],
        "facts": ["A private room costs two silver a night, breakfast included.",
                  f"{player.name} has {player.purse()}."],
        "affordances": [{"action": "rent_room"}, {"action": "give_item"}],
    }


def server_argv(model: str | None) -> list[str]:
    """Return the command that starts Brenna's server on stdin/stdout."""
    argv = [sys.executable, "-m", "personae.cli", "game", "--stdio", str(PERSONA)]
    return argv + (["--model", model] if model else [])


class Tavern:
    """One visit to the inn: the game loop around a `PersonaeClient`."""

    def __init__(self, args: argparse.Namespace, save_file: Path) -> None:
        self.args = args
        self.save_file = save_file
        self.player = Player(name=args.name)
        self.client: Any = None

    # -- the connection ------------------------------------------------------------

    def open(self) -> Any:
        """Start (or connect to) the server, say hello and describe the scene."""
        if self.args.connect:
            host, _, port = self.args.connect.rpartition(":")
            client = PersonaeClient.connect_tcp(host or "127.0.0.1", int(port),
                                                timeout=self.args.timeout)
        else:
            client = PersonaeClient.spawn_stdio(server_argv(self.args.model),
                                                timeout=self.args.timeout,
                                                stderr=subprocess.DEVNULL)
        welcome = client.hello(world=WORLD, slot="tavern")
        if NPC not in welcome.get("npcs", []):
            raise SystemExit(f"the server does not host {NPC}: it has {welcome.get('npcs')}")
        client.world(NPC, **scene(self.player))
        self.client = client
        return client

    def close(self) -> None:
        """End the connection; a server started here exits."""
        if self.client is not None:
            self.client.close()
            self.client = None

    # -- what Brenna does ----------------------------------------------------------

    def show(self, messages: list[dict[str, Any]]) -> None:
        """Print Brenna's answer; carry out the actions she takes."""
        assert self.client is not None
        spoken = False
        for message in messages:
            kind = message["type"]
            if kind == "sentence":
                prefix = "Brenna: " if not spoken else "        "
                print(prefix + message["text"])
                spoken = True
            elif kind == "emotion":
                print(f"        (Brenna looks {message['emotion']})")
            elif kind == "action":
                ok, detail = self.carry_out(message["name"], message.get("arguments", {}))
                print(f"        [{message['name']}: {detail}]")
                self.client.action_result(message["action_id"], ok, detail)
            elif kind == "no_response":
                print(f"        (Brenna says nothing: {message['reason']})")
            elif kind == "error":
                print(f"        (the game made a mistake: {message['message']})")
            elif kind == "reply" and not spoken and message.get("text"):
                print("Brenna: " + message["text"])

    def carry_out(self, name: str, arguments: dict[str, Any]) -> tuple[bool, str]:
        """Apply the game's rules to one of Brenna's host actions; return (ok, what happened)."""
        if name == "rent_room":
            return self.pay_for_room(int(arguments.get("nights", 1)))
        if name == "give_item":
            item = str(arguments.get("item", ""))
            quantity = int(arguments.get("quantity", 1))
            cost = PRICES.get(item, 0) * quantity
            if cost > self.player.copper:
                return False, f"{self.player.name} cannot pay {cost} copper for {item}"
            self.player.copper -= cost
            self.player.items += [item] * quantity
            return True, f"{self.player.name} paid {cost} copper and got {quantity} {item}"
        return False, f"this game has no {name!r}"

    def pay_for_room(self, nights: int) -> tuple[bool, str]:
        """Take the price of a private room from the purse, if it holds enough."""
        cost = ROOM_PER_NIGHT * nights
        if cost > self.player.copper:
            return False, f"{self.player.name} has only {self.player.purse()}"
        self.player.copper -= cost
        self.player.nights += nights
        self.player.items.append("room_key")
        return True, f"{self.player.name} paid {cost // 10} silver for {nights} night(s)"

    # -- the player's turn ---------------------------------------------------------

    def turn(self, text: str) -> bool:
        """Handle one line of player input; return False to end the game."""
        client = self.client
        assert client is not None
        if not text.startswith("/"):
            self.show(client.say(NPC, text, player={"id": "player", "name": self.player.name}))
            return True
        command = text.split()[0]
        if command == "/quit":
            return False
        if command == "/help":
            print("Say anything to Brenna, or: /look /rent /tip /leave (sleep, come back "
                  "next morning) /quit")
        elif command == "/look":
            print(f"[{scene(self.player)['location']}; you have {self.player.purse()}; "
                  f"items: {', '.join(self.player.items) or 'none'}]")
        elif command == "/rent":
            ok, detail = self.pay_for_room(1)
            print(f"[{detail}]")
            if ok:
                client.world(NPC, mode="update", facts=[
                    f"{self.player.name} has paid for a private room tonight.",
                    f"{self.player.name} has {self.player.purse()} left."])
                self.show(client.event(
                    f"{self.player.name} puts two silver on the counter for a private room.",
                    npc=NPC, actor="player", react="always"))
        elif command == "/tip":
            if self.player.copper < 1:
                print("[Your purse is empty.]")
            else:
                self.player.copper -= 1
                self.show(client.event(f"{self.player.name} leaves a copper on the counter.",
                                       npc=NPC, actor="player", react="always"))
        elif command == "/leave":
            self.sleep_and_return()
        else:
            print(f"[No such command {command}; /help lists them.]")
        return True

    def sleep_and_return(self) -> None:
        """Save, end the server, and come back the next day in a new one."""
        assert self.client is not None
        blob = self.client.save()
        self.save_file.write_text(json.dumps({"player": self.player.__dict__, "npcs": blob}),
                                  encoding="utf-8")
        print(f"[You sleep upstairs. The game is saved to {self.save_file}.]")
        self.close()
        saved = json.loads(self.save_file.read_text(encoding="utf-8"))
        self.player = Player(**saved["player"])
        self.player.day += 1
        client = self.open()
        try:
            loaded = client.load(saved["npcs"])
        except ServerError as exc:
            print(f"[The save could not be loaded: {exc}]")
            return
        print(f"[Day {self.player.day}. The save is loaded: {', '.join(loaded['npcs'])} "
              "has yesterday's conversation with you back.]")
        client.world(NPC, **scene(self.player))


def main() -> None:
    """Play the scene, or its scripted demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="play a scripted visit")
    parser.add_argument("--model", help="model spec for Brenna (default: offline)")
    parser.add_argument("--connect", metavar="HOST:PORT",
                        help="use a running `personae game serve --tcp PORT`")
    parser.add_argument("--name", default="Ana", help="your name")
    parser.add_argument("--save", type=Path, help="save file (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for an answer (the first loads a model)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tavern-") as tmp:
        tavern = Tavern(args, args.save or Path(tmp) / "tavern-save.json")
        print("You push open the door of the Copper Kettle. Rain follows you in.")
        print("(Starting Brenna... /help lists the commands.)")
        tavern.open()
        try:
            lines = iter(DEMO) if args.demo else None
            while True:
                if lines is not None:
                    text = next(lines, "/quit")
                    print(f"\n{args.name}> {text}")
                else:
                    try:
                        text = input(f"\n{args.name}> ").strip()
                    except EOFError:
                        break
                if text and not tavern.turn(text):
                    break
        finally:
            tavern.close()
        print(f"\nYou leave with {tavern.player.purse()} and "
              f"{', '.join(tavern.player.items) or 'nothing'}.")


if __name__ == "__main__":
    main()
