"""Where a graph runs: Dask's local threaded scheduler (default, no set-up), with ``workers`` threads, or a
running dask.distributed cluster (``scheduler`` tcp://host:port, or the DASK_SCHEDULER_ADDRESS environment
variable); with a progress bar from Dask's diagnostics either way."""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

log = logging.getLogger(__name__)
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


def scheduler_address(scheduler: str | None) -> str | None:
    """The cluster address to use: ``scheduler`` if given, else $DASK_SCHEDULER_ADDRESS, else None (local)."""
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if address is not None and "://" not in address:
        raise ValueError(f"--scheduler must be a Dask scheduler address such as tcp://host:8786, got {address!r}")
    return address


def compute(graphs: Sequence[Any], workers: int | None = None, scheduler: str | None = None,
            progress: bool = False, client: Any = None) -> list[Any]:
    """Compute ``graphs`` together and return their results in order.

    ``client``: an existing ``distributed.Client`` (tests, notebooks). Otherwise a cluster address
    (see :func:`scheduler_address`) or the local threaded scheduler with ``workers`` threads
    (None = one per core).
    """
    if workers is not None and not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    if client is not None:
        return _on_client(client, graphs, progress)
    address = scheduler_address(scheduler)
    if address is not None:
        from distributed import Client

        try:
            remote = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"no Dask scheduler answers at {address} ({exc}); start one or drop --scheduler") from None
        with remote:
            log.info("computing %d graph(s) on the cluster at %s", len(graphs), address)
            return _on_client(remote, graphs, progress)
    import dask

    log.info("computing %d graph(s) on the local threaded scheduler (%s workers)", len(graphs), workers or "all")
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=1.0):
            return list(dask.compute(*graphs, scheduler="threads", num_workers=workers))
    return list(dask.compute(*graphs, scheduler="threads", num_workers=workers))


def _on_client(client: Any, graphs: Sequence[Any], progress: bool) -> list[Any]:
    futures = client.compute(list(graphs))
    if progress:
        from distributed import progress as show_progress

        show_progress(futures)
    return client.gather(futures)
