"""JSON-RPC `message/send` calls: single timed calls and closed-loop load.

The load generator runs `concurrency` asyncio workers on one `httpx.AsyncClient`
with that many connections. Each worker sends its next request as soon as the
previous one completes, for a fixed duration after a short warm-up.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil

# Seconds a single request may take before it counts as an error. A loaded
# 2-core machine completes one in well under a second.
REQUEST_TIMEOUT = 30.0


@dataclass
class Target:
    """An endpoint that speaks JSON-RPC `message/send`, with its bearer token."""

    label: str
    url: str
    token: str
    text: str
    # Server process whose CPU time per request is measured, when known.
    pid: int | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class LoadResult:
    """Throughput and latency of one target at one concurrency level."""

    label: str
    text: str
    concurrency: int
    duration: float
    requests: int
    errors: int
    throughput: float
    p50_ms: float | None
    p95_ms: float | None
    first_error: str | None = None
    # Server CPU (user + system, children included) per completed request.
    server_cpu_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)


def send_body(text: str) -> dict[str, Any]:
    """Build an A2A 0.3 `message/send` request carrying `text`."""
    return {
        "jsonrpc": "2.0",
        "id": uuid.uuid4().hex,
        "method": "message/send",
        "params": {
            "message": {
                "messageId": uuid.uuid4().hex,
                "role": "user",
                "parts": [{"kind": "text", "text": text}],
            }
        },
    }


def reply_problem(response: httpx.Response) -> str | None:
    """Return why a reply is not a completed task, or None when it is."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    body = response.json()
    if "error" in body:
        return f"JSON-RPC error {body['error'].get('code')}"
    state = body.get("result", {}).get("status", {}).get("state")
    if state != "completed":
        return f"task state {state}"
    return None


def timed_call(target: Target) -> float:
    """Send one request with a fresh client; return the wall time in seconds."""
    started = time.perf_counter()
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        response = client.post(
            target.url, json=send_body(target.text), headers=target.headers()
        )
    elapsed = time.perf_counter() - started
    problem = reply_problem(response)
    if problem is not None:
        raise RuntimeError(f"{target.label} failed: {problem}")
    return elapsed


def cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU seconds of a process and its children so far."""
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
        return sum(sum(member.cpu_times()[:2]) for member in members)
    except psutil.Error:
        return None


async def _worker(
    client: httpx.AsyncClient,
    target: Target,
    stop_at: float,
    record_from: float,
    latencies: list[float],
    errors: list[str],
    completed: list[int],
) -> None:
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        try:
            response = await client.post(
                target.url, json=send_body(target.text), headers=target.headers()
            )
            problem = reply_problem(response)
        except httpx.HTTPError as error:
            problem = f"{type(error).__name__}: {error}"
        completed[0] += problem is None
        if started < record_from:
            continue
        if problem is None:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            errors.append(problem)


async def _run_load(
    target: Target, concurrency: int, duration: float, warmup: float
) -> LoadResult:
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency
    )
    latencies: list[float] = []
    errors: list[str] = []
    completed = [0]
    cpu_before = cpu_seconds(target.pid)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits) as client:
        begin = time.perf_counter()
        record_from = begin + warmup
        stop_at = record_from + duration
        workers = [
            _worker(client, target, stop_at, record_from, latencies, errors, completed)
            for _ in range(concurrency)
        ]
        await asyncio.gather(*workers)
        # Requests in flight at stop_at finish late, so divide by the real span.
        span = time.perf_counter() - record_from
    cpu_after = cpu_seconds(target.pid)
    server_cpu_ms = None
    if cpu_before is not None and cpu_after is not None and completed[0]:
        server_cpu_ms = (cpu_after - cpu_before) * 1000 / completed[0]

    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else []
    return LoadResult(
        label=target.label,
        text=target.text,
        concurrency=concurrency,
        duration=span,
        requests=len(latencies),
        errors=len(errors),
        throughput=len(latencies) / span,
        p50_ms=statistics.median(latencies) if latencies else None,
        p95_ms=quantiles[94] if quantiles else None,
        first_error=errors[0] if errors else None,
        server_cpu_ms=server_cpu_ms,
        latencies_ms=latencies,
    )


def run_load(
    target: Target, concurrency: int, duration: float, warmup: float
) -> LoadResult:
    """Load `target` with `concurrency` workers for `duration` seconds."""
    return asyncio.run(_run_load(target, concurrency, duration, warmup))
