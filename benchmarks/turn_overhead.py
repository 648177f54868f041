"""Per-turn overhead of `Agent.respond` against a bare LangChain `create_agent`.

Both run the same instant fake model with the same system prompt, in the same
process and run, so the ratio says what personae adds (prompt compilation,
lore, middleware, SQLite history, trace) on top of LangChain itself. A second
baseline gives the bare agent the same SQLite checkpointer, to separate the
cost of persistence from the cost of personae's own work; a third saves its
checkpoint once at the end of each turn, as personae does (LangGraph's
default saves after every step). Also
measures the time from process start to the first reply of `personae chat`
in pipe mode, against starting Python and importing LangChain's agent.

    python benchmarks/turn_overhead.py [--turns 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "personas" / "innkeeper.yaml"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _bare(turns: int, prompt: str, db: Path | None = None,
                durability: Literal["exit"] | None = None) -> list[float]:
    """A bare `create_agent`; history in memory, or in SQLite like personae when `db` is set.

    `durability` as LangGraph takes it: None is its default (a checkpoint after
    every step); personae saves once a turn ends ("exit").
    """
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    from personae.testing import FakeChatModel

    model = FakeChatModel(default="Aye.")
    times = []
    if db is None:
        graph = create_agent(model, [], system_prompt=prompt)
        history: list[object] = []
        for i in range(turns):
            start = time.perf_counter()
            state = await graph.ainvoke({"messages": [*history, HumanMessage(f"hello {i}")]})
            times.append(time.perf_counter() - start)
            history = state["messages"]
        return times
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = create_agent(model, [], system_prompt=prompt, checkpointer=saver)
        config = {"configurable": {"thread_id": "bench"}}
        for i in range(turns):
            start = time.perf_counter()
            await graph.ainvoke({"messages": [HumanMessage(f"hello {i}")]}, config,
                                durability=durability)
            times.append(time.perf_counter() - start)
    return times


async def _personae(turns: int, home: Path) -> tuple[list[float], str]:
    from personae.agents.agent import Agent
    from personae.agents.turn import Turn
    from personae.settings import Settings
    from personae.testing import FakeChatModel, FakeEmbeddings

    agent = Agent.from_file(EXAMPLE, model=FakeChatModel(default="Aye."), fallbacks=[],
                            settings=Settings(home=home), embedder=FakeEmbeddings(),
                            memory=False)
    prompt = (await agent.explain(Turn(text="hello"))).text
    times = []
    for i in range(turns):
        start = time.perf_counter()
        await agent.respond(f"hello {i}")
        times.append(time.perf_counter() - start)
    await agent.aclose()
    return times, prompt


def _first_reply_seconds(cmd: list[str], stdin: str) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait(timeout=120)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        # Warm both paths once so imports and first-call setup are not counted.
        _, prompt = asyncio.run(_personae(3, Path(home) / "warm"))
        asyncio.run(_bare(3, prompt))
        ours, _ = asyncio.run(_personae(args.turns, Path(home) / "run"))
        bare = asyncio.run(_bare(args.turns, prompt))
        bare_sqlite = asyncio.run(_bare(args.turns, prompt, Path(home) / "bare.sqlite"))
        bare_exit = asyncio.run(_bare(args.turns, prompt, Path(home) / "exit.sqlite", "exit"))

        env_cmd = [sys.executable, "-m", "personae.cli", "chat", str(EXAMPLE),
                   "--user", "bench"]
        import os

        os.environ["PERSONAE_HOME"] = str(Path(home) / "cli")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        first_reply = _first_reply_seconds(env_cmd, "What's on the menu tonight?\n")
        baseline_start = _first_reply_seconds(
            [sys.executable, "-c", "import langchain.agents; print('ready')"], "")

    result = {
        "turns": args.turns,
        "personae_p50_ms": statistics.median(ours) * 1000,
        "personae_p95_ms": _pct(ours, 0.95) * 1000,
        "bare_p50_ms": statistics.median(bare) * 1000,
        "bare_p95_ms": _pct(bare, 0.95) * 1000,
        "ratio_p50": statistics.median(ours) / statistics.median(bare),
        "ratio_p95": _pct(ours, 0.95) / _pct(bare, 0.95),
        "bare_sqlite_p50_ms": statistics.median(bare_sqlite) * 1000,
        "bare_sqlite_p95_ms": _pct(bare_sqlite, 0.95) * 1000,
        "ratio_sqlite_p50": statistics.median(ours) / statistics.median(bare_sqlite),
        "ratio_sqlite_p95": _pct(ours, 0.95) / _pct(bare_sqlite, 0.95),
        "bare_exit_p50_ms": statistics.median(bare_exit) * 1000,
        "bare_exit_p95_ms": _pct(bare_exit, 0.95) * 1000,
        "ratio_exit_p50": statistics.median(ours) / statistics.median(bare_exit),
        "ratio_exit_p95": _pct(ours, 0.95) / _pct(bare_exit, 0.95),
        "chat_first_reply_s": first_reply,
        "python_import_langchain_s": baseline_start,
        "ratio_first_reply": first_reply / baseline_start,
    }
    print(f"Agent.respond   p50 {result['personae_p50_ms']:.2f} ms  "
          f"p95 {result['personae_p95_ms']:.2f} ms")
    print(f"bare agent      p50 {result['bare_p50_ms']:.2f} ms  "
          f"p95 {result['bare_p95_ms']:.2f} ms")
    print(f"bare + SQLite   p50 {result['bare_sqlite_p50_ms']:.2f} ms  "
          f"p95 {result['bare_sqlite_p95_ms']:.2f} ms")
    print(f"bare + SQLite, saved at the end of a turn (as personae)  "
          f"p50 {result['bare_exit_p50_ms']:.2f} ms  p95 {result['bare_exit_p95_ms']:.2f} ms")
    print(f"ratio vs bare           p50 {result['ratio_p50']:.2f}x  p95 {result['ratio_p95']:.2f}x")
    print(f"ratio vs bare + SQLite  p50 {result['ratio_sqlite_p50']:.2f}x  "
          f"p95 {result['ratio_sqlite_p95']:.2f}x")
    print(f"ratio vs bare + SQLite saved at the end  p50 {result['ratio_exit_p50']:.2f}x  "
          f"p95 {result['ratio_exit_p95']:.2f}x")
    print(f"personae chat (pipe) start to first reply: {first_reply:.2f} s "
          f"(python + import langchain.agents: {baseline_start:.2f} s, "
          f"{result['ratio_first_reply']:.1f}x)")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
