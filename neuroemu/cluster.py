"""The CLI's cluster options: ``--scheduler ADDRESS`` (an existing Dask scheduler) or
``--workers N`` (a ``distributed.LocalCluster`` of N single-threaded worker processes for the
duration of one command).  The library itself never starts a cluster: Python callers pass their
own ``distributed.Client`` (README: laptop, LocalCluster, SLURM)."""

from __future__ import annotations

import contextlib

from hw_models.errors import DataError


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None):
    """Yield a ``distributed.Client`` (or None when neither option is given); closes what it
    opened."""
    if scheduler is None and workers is None:
        yield None
        return
    if scheduler is not None and workers is not None:
        raise DataError("give --scheduler or --workers, not both")
    try:
        from distributed import Client
    except ImportError:
        raise DataError("--scheduler/--workers need Dask: pip install 'neuroemu[dask]'") \
            from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise DataError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") \
                from None
        try:
            yield client
        finally:
            client.close()
        return
    if int(workers) < 1:
        raise DataError(f"--workers must be >= 1, got {workers}")
    from emulator.backends import local_cluster
    cluster = local_cluster(int(workers))   # quiet settings: see emulator.backends.QUIET_CONFIG
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
