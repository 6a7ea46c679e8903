"""Benchmark jobs as Ray tasks, on a cluster (an address or ``auto``) or on a local Ray.

Why Ray: people who run benchmarks past one machine already have a Ray cluster; it places, retries and
collects the tasks, so we keep no scheduler of our own. Only imported when a run asks for Ray, so
tracking never needs it (a missing Ray is a one-line error saying what to install).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar
from unittest import mock

from ..errors import SiamTrackError

try:
    import ray
    from ray.exceptions import RayError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy
except ImportError:
    raise SiamTrackError("--ray needs Ray, which is not installed: pip install 'siamtrack[ray]'") from None

from .runner import set_single_thread

Job = TypeVar("Job")
MAX_RETRIES = 3  # a task whose worker process dies (killed, out of memory, node lost) runs again up to this often


@contextlib.contextmanager
def connected(address: str) -> Iterator[None]:
    """Ray for one run: the Ray this process already initialised, as it is; else ``address`` (``local``: a new
    Ray on this machine's cores; ``auto`` or host:port: an existing cluster), shut down after the run."""
    if ray.is_initialized():
        yield
        return
    local = {"include_dashboard": False} if address == "local" else {}
    # Ray starts its workers at niceness 15: beside other work they get less CPU than a --workers process, and
    # their fps mean something else (0.74x beside other jobs on a 2-core machine). A cluster's nodes: the README.
    niceness = {"RAY_worker_niceness": os.environ.get("RAY_worker_niceness", "0")} if local else {}
    try:
        check_reachable(address)
        with mock.patch.dict(os.environ, niceness):
            ray.init(address=address, logging_level=logging.ERROR, **local)
    except (OSError, RuntimeError, ValueError) as exc:  # OSError: ConnectionError, unknown host, timeout
        raise SiamTrackError(f"cannot reach a Ray cluster at {address!r} ({first_line(exc)}); start one with "
                             "`ray start --head`, or give --ray alone for a local Ray") from None
    try:
        yield
    finally:
        ray.shutdown()


def check_reachable(address: str) -> None:
    """A host:port that accepts no connection is a ConnectionError now: Ray would retry it for minutes."""
    host, sep, port = address.rpartition(":")
    if sep and "://" not in address and port.isdigit():
        socket.create_connection((host, int(port)), timeout=10).close()


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def describe(exc: RayError) -> str:
    """Why a task failed, in one line: the task's own exception, else what happened to its worker."""
    cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
    retried = "" if isinstance(exc, RayTaskError) else f" (after {MAX_RETRIES} retries)"
    return f"Ray task failed{retried}: {type(cause).__name__}: {first_line(cause)}"


def _unreadable(paths: list[str]) -> str | None:
    return next((p for p in paths if not os.access(p, os.R_OK)), None)


def check_readable(paths: list[Path]) -> None:
    """Every node that runs tasks reads ``paths`` (one check task pinned to each), else a one-line error
    naming the node and the path: tasks read the dataset where they run."""
    check = ray.remote(num_cpus=0)(_unreadable)
    nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
    names = [str(p) for p in paths]
    refs = [check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(names)
            for n in nodes]
    for node, missing in zip(nodes, ray.get(refs)):
        if missing is not None:
            raise SiamTrackError(f"Ray node {node['NodeManagerAddress']} cannot read {missing}; the dataset must be "
                                 "at the same path on every node (a shared or copied folder, see the README)")


def _one_thread(fn: Callable[[Any], Any], job: Any) -> Any:
    set_single_thread()  # as a --workers process does: fps figures mean the same on both engines
    return fn(job)


def ray_map(fn: Callable[[Job], Any], jobs: list[Job], address: str, reads: list[Path]) -> Iterator[tuple[Job, Any]]:
    """``(job, fn(job))`` for every job, as its 1-CPU Ray task finishes; a job that still fails after Ray's
    retries comes with its RayError instead. ``reads``: the files every node must be able to read."""
    with connected(address):
        check_readable(reads)
        # never held to a caller's placement group (a Ray Tune trial's): each task takes its CPU from the cluster
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES,
                          scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=None))(_one_thread)
        pending = {task.remote(fn, job): job for job in jobs}
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                try:
                    outcome = ray.get(ref)
                except RayError as exc:
                    outcome = exc
                yield pending.pop(ref), outcome
        finally:
            for ref in pending:
                ray.cancel(ref)
