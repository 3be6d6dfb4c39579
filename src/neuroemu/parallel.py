"""Local worker processes shared by the stages that fan out (simulation, sweeps)."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
import time

__all__ = ["process_pool"]


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
