"""Load on the companion endpoint: many users at once, next to a bare FastAPI route.

Two servers run in child processes, one after the other, each with uvicorn
on 127.0.0.1 and the same fake chat model that answers after a fixed delay:

- `personae`: `create_app` with one persona: API key check, rate limits,
  the user index, the Agent (prompt, LangGraph loop, SQLite history).
- `bare`: a FastAPI route that calls the same fake model and returns an
  OpenAI-shaped body, with nothing else.

The load generator (this process, httpx async) runs `--users` simulated
users, each sending `--requests` chat completions, `--think` seconds apart
(as people read and type between messages; `--think 0` sends them back to
back, which measures saturation rather than latency).
Printed: throughput and p50/p99 latency of each, the overhead (ours minus
bare, per percentile) and the throughput ratio. The goal is an overhead p99
under 25 ms at 200 users; the result says whether it was met.

    python benchmarks/endpoint_load.py            # 200 users x 5 requests 5 s apart, 50 ms model
    python benchmarks/endpoint_load.py --quick    # a smoke run
    python benchmarks/endpoint_load.py --memory   # with long-term memory on (fake embeddings)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEY = "pk-bench"
PERSONA = "bench"


def _fake_model(latency: float) -> Any:
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    from personae.testing import FakeChatModel

    class SlowModel(FakeChatModel):
        """Answers after `latency` seconds without blocking the event loop."""

        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                             **kwargs: Any) -> ChatResult:
            await asyncio.sleep(latency)
            message = AIMessage("Thank you, that is good to hear.",
                                response_metadata={"model_name": "slow-fake"})
            return ChatResult(generations=[ChatGeneration(message=message)])

    return SlowModel(name_tag="slow-fake")


def _personae_app(home: Path, latency: float, memory: bool) -> Any:
    from personae.agents.agent import Agent
    from personae.integrations.companion.app import create_app
    from personae.integrations.companion.config import CompanionConfig, hash_key
    from personae.memory.facts import RuleFactExtractor
    from personae.personas.model import Persona
    from personae.settings import Settings
    from personae.testing import FakeEmbeddings

    settings = Settings(home=home)
    persona = Persona.model_validate({"id": PERSONA, "name": "Bench",
                                      "memory": {"enabled": memory}})
    store: Any = False
    if memory:
        from personae.memory.store import MemoryStore

        store = MemoryStore(home / "memory", embedder=FakeEmbeddings())
    agent = Agent(persona, model=_fake_model(latency), fallbacks=[], settings=settings,
                  embedder=FakeEmbeddings(), memory=store, fact_extractor=RuleFactExtractor())
    config = CompanionConfig.model_validate({
        "tenants": {"bench": {"keys": [{"id": "load", "sha256": hash_key(KEY)}]}},
        "rate_limits": {"per_key": None, "per_user": None},
        "care": False,
    })
    return create_app(config, agents=[agent], settings=settings, embedder=FakeEmbeddings())


def _bare_app(latency: float) -> Any:
    from fastapi import FastAPI
    from langchain_core.messages import HumanMessage

    app = FastAPI()
    model = _fake_model(latency)

    @app.post("/v1/chat/completions")
    async def complete(body: dict[str, Any]) -> dict[str, Any]:
        reply = await model.ainvoke([HumanMessage(body["messages"][-1]["content"])])
        return {"id": "chatcmpl-bare", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": reply.text}}]}  # fmt: skip

    return app


def _serve(kind: str, port: int, latency: float, memory: bool) -> None:
    import logging

    import uvicorn

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="personae-bench-") as home:
        app = _personae_app(Path(home), latency, memory) if kind == "personae" else (
            _bare_app(latency))
        # Stopped with SIGINT: uvicorn shuts down, then re-raises it as KeyboardInterrupt,
        # which still lets the data directory be removed.
        with contextlib.suppress(KeyboardInterrupt):
            # Idle pooled connections must outlive the queue of a slow run.
            uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False,
                        timeout_keep_alive=300)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(kind: str, latency: float, memory: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    args = [sys.executable, __file__, "--serve", kind, "--port", str(port),
            "--latency", str(latency)] + (["--memory"] if memory else [])  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the {kind} server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the {kind} server did not start within 60 s")


async def _load(url: str, users: int, requests: int, think: float = 0.0) -> dict[str, float]:
    import httpx

    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    latencies: list[float] = []
    failures = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one(user: int, n: int) -> None:
            nonlocal failures
            body = {"model": PERSONA, "user": f"user-{user}",
                    "messages": [{"role": "user", "content": f"Hello, this is message {n}."}]}
            started = time.perf_counter()
            try:
                response = await client.post("/v1/chat/completions", json=body,
                                             headers={"Authorization": f"Bearer {KEY}"})
            except httpx.TransportError:
                failures += 1
                return
            if response.status_code != 200:
                failures += 1
                return
            latencies.append(time.perf_counter() - started)

        async def user_loop(user: int) -> None:
            # Users start spread over one think time, as people do, not all at once.
            await asyncio.sleep(think * user / users)
            for n in range(requests):
                if n:
                    await asyncio.sleep(think)
                await one(user, n)

        await one(-1, 0)  # warm up: first turn opens the databases
        latencies.clear()
        # The load generator's own collector pauses would be counted against
        # whichever server is being measured: keep it off while measuring.
        gc.collect()
        gc.freeze()
        gc.disable()
        started = time.perf_counter()
        await asyncio.gather(*(user_loop(u) for u in range(users)))
        elapsed = time.perf_counter() - started
        gc.enable()
        gc.unfreeze()
    if not latencies:
        raise RuntimeError(f"every request failed ({failures})")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"requests": len(latencies), "failures": failures, "seconds": round(elapsed, 3),
            "throughput": round(len(latencies) / elapsed, 1),
            "p50_ms": round(cuts[49] * 1000, 2), "p99_ms": round(cuts[98] * 1000, 2)}  # fmt: skip


def _measure(kind: str, args: argparse.Namespace) -> dict[str, float]:
    proc, url = _start(kind, args.latency, args.memory)
    try:
        return asyncio.run(_load(url, args.users, args.requests, args.think))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200, help="concurrent users")
    parser.add_argument("--requests", type=int, default=5, help="requests per user")
    parser.add_argument("--latency", type=float, default=0.05, help="fake model delay, s")
    parser.add_argument("--think", type=float, default=5.0,
                        help="seconds each user waits between its messages (0: back to back)")
    parser.add_argument("--memory", action="store_true", help="long-term memory on")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 users x 2")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    parser.add_argument("--serve", choices=["personae", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port, args.latency, args.memory)
        return
    if args.quick:
        args.users, args.requests, args.latency, args.think = 20, 2, 0.02, 0.1
    print(f"{args.users} users x {args.requests} chat completions, {args.think:g} s apart; "
          f"fake model {args.latency * 1000:.0f} ms; memory {'on' if args.memory else 'off'}")
    bare = _measure("bare", args)
    ours = _measure("personae", args)
    overhead_p50 = round(ours["p50_ms"] - bare["p50_ms"], 2)
    overhead_p99 = round(ours["p99_ms"] - bare["p99_ms"], 2)
    ratio = round(ours["throughput"] / bare["throughput"], 3)
    for name, found in (("bare FastAPI", bare), ("personae", ours)):
        print(f"{name:>13}: {found['throughput']:8.1f} req/s  p50 {found['p50_ms']:8.2f} ms  "
              f"p99 {found['p99_ms']:8.2f} ms  ({found['failures']:.0f} failed)")
    print(f"{'overhead':>13}: p50 +{overhead_p50:.2f} ms, p99 +{overhead_p99:.2f} ms; "
          f"throughput ratio {ratio:.3f} (personae / bare)")
    goal = overhead_p99 < 25.0
    print(f"goal p99 overhead < 25 ms at {args.users} users: {'met' if goal else 'NOT met'}")
    if args.json:
        print(json.dumps({"users": args.users, "requests": args.requests,
                          "latency_ms": args.latency * 1000, "think_s": args.think,
                          "memory": args.memory,
                          "bare": bare, "personae": ours, "overhead_p50_ms": overhead_p50,
                          "overhead_p99_ms": overhead_p99, "throughput_ratio": ratio,
                          "goal_met": goal}))  # fmt: skip


if __name__ == "__main__":
    main()
