"""Keep LangSmith's per-middleware bookkeeping on the event loop while tracing is off.

`create_agent` wraps every middleware's `awrap_model_call` in LangSmith's
`traceable`, whose async wrapper hands its set-up and tear-down to a worker
thread (two thread hops per middleware per model call) even when nothing is
traced. With five such middleware that is ten hops a turn, and under load
each waits for a free worker and for the GIL. When tracing is off those
functions only read context variables, so they run inline here; when it is
on (`LANGSMITH_TRACING=true`, a `tracing_context`, a parent run) LangSmith's
own threaded path is used, unchanged.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

_installed = False


async def _inline_unless_tracing(
    default: Callable[..., Awaitable[Any]],
    ctx: contextvars.Context,
    func: Callable[..., Any],
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    from langsmith.utils import tracing_is_enabled

    if ctx.run(tracing_is_enabled):
        return await default(ctx, func, *args, **kwargs)
    return ctx.run(func, *args, **kwargs)


def run_untraced_hooks_inline() -> None:
    """Install the inline path once per process, unless the application set its own."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from langsmith import set_runtime_overrides
        from langsmith._runtime_overrides import get_runtime_overrides
    except ImportError:  # an older LangSmith without runtime overrides: keep its default
        return
    if get_runtime_overrides().aio_to_thread is None:
        set_runtime_overrides(aio_to_thread=_inline_unless_tracing)
