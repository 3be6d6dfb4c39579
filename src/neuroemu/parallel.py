"""Fan-out shared by the stages that run many independent tasks (simulation trials, training runs).

- :func:`process_pool`: local worker processes, freshly spawned (no forked NEURON or CUDA state), that exit
  with their parent;
- :func:`dask_client`: the Dask client of a run (the caller's, one connected to a scheduler address, or none);
- :func:`run_tasks`: one task per argument tuple, in this process, in local workers or on a Dask cluster, with
  at most ``max_in_flight`` tasks submitted at a time (memory stays bounded); results come back as they finish.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import threading
import time
from typing import Any, Callable, Iterator, Sequence

__all__ = ["process_pool", "dask_client", "run_tasks", "cpu_count"]


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Worker initializer: end this worker when its parent is gone (killed by ``timeout`` or a scheduler),
    instead of lingering as an orphan that waits forever for work."""

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` freshly spawned processes (no forked NEURON or CUDA state) that exit with this one."""
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_exit_with_parent, initargs=(os.getpid(),))


@contextlib.contextmanager
def dask_client(client: Any = None, scheduler: str | None = None) -> Iterator[Any]:
    """The Dask client to use: ``client`` as given (left open), else a client connected to ``scheduler`` (closed
    on exit), else ``None`` (run locally)."""
    if client is not None or not scheduler:
        yield client
        return
    from distributed import Client

    own = Client(scheduler)
    try:
        yield own
    finally:
        own.close()


def dask_worker_count(client: Any) -> int:
    """Number of workers the client's scheduler knows (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def run_tasks(fn: Callable[..., Any], tasks: Sequence[tuple], *, workers: int = 1, client: Any = None,
              max_in_flight: int | None = None, pool: cf.Executor | None = None,
              catch: tuple[type[BaseException], ...] = ()) -> Iterator[tuple[int, Any, BaseException | None]]:
    """Run ``fn(*task)`` for every task; yield ``(task number, result, None)`` as tasks finish (in submission
    order among those finishing together), or ``(task number, None, error)`` for errors of the ``catch`` types.
    Other errors stop the run and are raised; unfinished tasks are cancelled.

    Where: on the Dask ``client`` if given; else in ``pool`` (an executor the caller owns) or, when
    ``workers`` > 1, a fresh :func:`process_pool`; else in this process, one task after the other.
    """
    if not tasks:
        return
    if client is None and pool is None and workers <= 1:
        for k, args in enumerate(tasks):
            try:
                yield k, fn(*args), None
            except catch as err:
                yield k, None, err
        return
    if client is not None:
        yield from _run_dask(fn, tasks, client, max_in_flight or 2 * dask_worker_count(client), catch)
        return
    own = pool is None
    pool = pool or process_pool(workers)
    try:
        yield from _run_pool(fn, tasks, pool, max_in_flight or 2 * workers, catch)
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_pool(fn, tasks, pool: cf.Executor, max_in_flight: int, catch):
    pending: dict[cf.Future, int] = {}
    queue = list(range(len(tasks)))
    try:
        while queue or pending:
            while queue and len(pending) < max_in_flight:
                k = queue.pop(0)
                pending[pool.submit(fn, *tasks[k])] = k
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: pending[f]):
                k = pending.pop(fut)
                err = fut.exception()
                if err is not None and not isinstance(err, catch):
                    raise err
                yield k, (None if err else fut.result()), err
    finally:
        for fut in pending:
            fut.cancel()


def _run_dask(fn, tasks, client, max_in_flight: int, catch):
    from distributed import as_completed

    queue = list(range(len(tasks)))
    number: dict[str, int] = {}

    def submit():
        k = queue.pop(0)
        fut = client.submit(fn, *tasks[k], pure=False)
        number[fut.key] = k
        return fut

    ac = as_completed([submit() for _ in range(min(max_in_flight, len(queue)))])
    try:
        for fut in ac:
            k = number.pop(fut.key)
            if fut.status == "error":
                err = fut.exception()
                if not isinstance(err, catch):
                    raise err
                yield k, None, err
            else:
                yield k, fut.result(), None
            fut.release()
            if queue:
                ac.add(submit())
    finally:
        for fut in list(getattr(ac, "futures", [])):
            fut.cancel()
