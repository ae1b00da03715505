"""The engines that run a sweep's cells: Ray (default; embedded on this machine, or `--address` to join a cluster)
and SLURM through submitit (`--executor slurm`; `--executor local` is submitit's local executor, for tests).
No scheduler of our own: the engine decides where and when a cell runs, from the resources each cell declares
(CPUs, memory, one GPU where the cluster has GPUs)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import MRDError
from .cell import package_root, run_cell

GiB = 1024 ** 3


@dataclass
class EngineOptions:
    executor: str = "ray"                 # ray | slurm | local (submitit's local executor)
    address: str | None = None            # Ray cluster address (ray://host:10001 or host:6379); None: embedded
    cpus_per_cell: float = 1.0
    memory_per_cell_gb: float | None = None  # declared to the engine so that it never starts more cells than fit;
                                             # None: cell_memory_gb(cell) for each cell
    gpus_per_cell: float | None = None    # None: 1 where the cluster has GPUs, else 0
    max_parallel: int | None = None       # embedded Ray only: CPUs it may use = max_parallel x cpus_per_cell
    partition: str | None = None          # SLURM
    timeout_min: int = 24 * 60            # SLURM / submitit: a cell's wall-clock limit
    slurm_args: dict = field(default_factory=dict)


PIXEL_MODELS = ("mae", "dual_buffer")


def cell_memory_gb(cell) -> float:
    """What a cell declares by default, from peaks measured on tiny runs (docs/sweeps.md): the end-of-run
    cross-model panel loads six networks (5.4 GiB peak at 32 px, 6.6 GB at 128 px), a pixel run without it peaks
    at 1.4 GiB, a network objective alone adds its network and its activations."""
    f = cell.flags
    panel = (not f.get("no-evidence") and str(f.get("panel-every", 0)) != "-1"
             and f.get("panel-models", None) != [])
    if panel:
        return 8.0
    return 2.0 if cell.model in PIXEL_MODELS else 4.0


def _memory_gb(cell, opts) -> float:
    return opts.memory_per_cell_gb or cell_memory_gb(cell)


def run_with_ray(cells: list, sweep_dir: Path, opts: EngineOptions, on_result: Callable, task_kw: dict) -> dict:
    """Runs every cell as a Ray task; calls on_result(result) as each ends. Returns what the engine reported."""
    try:
        import ray
    except ImportError:
        raise MRDError("Ray is not installed: pip install 'mrd[sweep]' (or ray), or use --executor slurm") from None
    env_vars = {"PYTHONPATH": os.pathsep.join(p for p in (package_root(), os.environ.get("PYTHONPATH")) if p)}
    t0 = time.perf_counter()
    if opts.address:
        # a cluster: mrd must be installed on its nodes (the same version); the sweep folder on a shared disk
        try:
            ray.init(address=opts.address, runtime_env={"env_vars": env_vars}, log_to_driver=False)
        except ConnectionError as exc:
            raise MRDError(f"cannot join the Ray cluster at {opts.address} ({str(exc).splitlines()[0]}): check the "
                           "address (`ray status` on the head) and that this machine has the cluster's auth token "
                           "(Ray's token authentication, docs/sweeps.md)") from None
    else:
        num_cpus = None
        if opts.max_parallel:
            num_cpus = max(opts.cpus_per_cell, opts.max_parallel * opts.cpus_per_cell)
        # address="local": always a new instance of our own, never a cluster that `ray start` left on this machine.
        # A small object store: cells pass only file names, never arrays.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 2 ** 20,
                 runtime_env={"env_vars": env_vars}, configure_logging=False)
    init_s = time.perf_counter() - t0
    res = ray.cluster_resources()
    gpus = opts.gpus_per_cell
    if gpus is None:
        gpus = 1 if res.get("GPU", 0) >= 1 else 0
    mems = {c.name: int(_memory_gb(c, opts) * GiB) for c in cells}
    mem = max(mems.values())
    if mem > res.get("memory", 0):
        ray.shutdown()
        raise MRDError(f"a cell declares {mem / GiB:g} GiB but the Ray cluster has "
                       f"{res.get('memory', 0) / GiB:.1f} GiB for tasks: lower --memory-per-cell")
    # max_retries=0: a cell that crashed is rerun by the next `mrd sweep`, which sets its folder aside first
    task = ray.remote(run_cell)
    per_cell = dict(num_cpus=opts.cpus_per_cell, num_gpus=gpus, max_retries=0)
    fits = int(min(res.get("CPU", 0) // opts.cpus_per_cell, res.get("memory", 0) // mem,
                   (res.get("GPU", 0) // gpus) if gpus else 10 ** 9))
    info = {"engine": "ray", "address": opts.address or "embedded", "init_seconds": init_s,
            "resources": {k: v for k, v in res.items() if not k.startswith("node:")},
            "gpus_per_cell": gpus, "memory_per_cell_gb": mem / GiB, "cells_at_once": fits}
    refs = {task.options(memory=mems[c.name], **per_cell).remote(c.to_dict(), str(sweep_dir), **task_kw): c for c in cells}
    try:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    on_result(ray.get(ref))
                except ray.exceptions.RayError as exc:   # the worker died (out of memory, node lost)
                    c = refs[ref]
                    on_result({"name": c.name, "action": "lost", "status": "failed", "run_dir": str(sweep_dir / c.name),
                               "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}", "seconds": 0.0})
    finally:
        t1 = time.perf_counter()
        if not opts.address:
            ray.shutdown()
        info["shutdown_seconds"] = time.perf_counter() - t1
    return info


def make_submitit_executor(opts: EngineOptions, sweep_dir: Path, cells: list):
    """submitit's SLURM executor (one job array, resources per cell) or its local executor."""
    import submitit
    folder = sweep_dir / "submitit" / "%j"
    gpus = int(opts.gpus_per_cell or 0)
    if opts.executor == "slurm":
        if not opts.partition:
            raise MRDError("--executor slurm needs --partition NAME (the SLURM partition to submit the cells to)")
        try:
            ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        except RuntimeError as exc:   # no srun on this machine
            raise MRDError(f"SLURM is not reachable from here ({exc}): run mrd sweep on the cluster's login "
                           "node, or use --executor ray") from None
        ex.update_parameters(slurm_partition=opts.partition, timeout_min=opts.timeout_min, nodes=1, tasks_per_node=1,
                             cpus_per_task=max(1, int(opts.cpus_per_cell)), gpus_per_node=gpus,
                             mem_gb=max(_memory_gb(c, opts) for c in cells), name=f"mrd-sweep-{sweep_dir.name}",
                             slurm_array_parallelism=opts.max_parallel or 256, **opts.slurm_args)
    elif opts.executor == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=opts.timeout_min, gpus_per_node=gpus)
    else:
        raise MRDError(f"unknown executor {opts.executor!r}: use ray, slurm or local")
    return ex


def run_with_submitit(cells: list, sweep_dir: Path, opts: EngineOptions, on_result: Callable, task_kw: dict) -> dict:
    """Runs every cell as a submitit job: a SLURM job array (`slurm`) or local processes (`local`)."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise MRDError("submitit is not installed: pip install 'mrd[sweep]' (or submitit)") from None
    ex = make_submitit_executor(opts, sweep_dir, cells)
    t0 = time.perf_counter()
    if opts.executor == "local" and opts.max_parallel:
        jobs = []  # the local executor has no array throttle: submit in waves of max_parallel
        for i in range(0, len(cells), opts.max_parallel):
            wave = [ex.submit(run_cell, c.to_dict(), str(sweep_dir), **task_kw) for c in cells[i:i + opts.max_parallel]]
            _collect(wave, cells[i:i + opts.max_parallel], sweep_dir, on_result)
            jobs += wave
    else:
        with ex.batch():
            jobs = [ex.submit(run_cell, c.to_dict(), str(sweep_dir), **task_kw) for c in cells]
        _collect(jobs, cells, sweep_dir, on_result)
    return {"engine": f"submitit-{opts.executor}", "job_ids": [j.job_id for j in jobs],
            "submit_seconds": time.perf_counter() - t0, "gpus_per_cell": int(opts.gpus_per_cell or 0),
            "cells_at_once": opts.max_parallel or len(cells)}


def _collect(jobs, cells, sweep_dir, on_result) -> None:
    left = dict(zip(jobs, cells))
    while left:
        for job in [j for j in left if j.done()]:
            c = left.pop(job)
            try:
                on_result(job.result())
            except Exception as exc:  # the job failed or was killed: the next `mrd sweep` reruns this cell
                on_result({"name": c.name, "action": "lost", "status": "failed", "run_dir": str(sweep_dir / c.name),
                           "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else ''}",
                           "seconds": 0.0})
        if left:
            time.sleep(1.0)


def run_cells(cells, sweep_dir, opts: EngineOptions, on_result, task_kw) -> dict:
    if opts.executor == "ray":
        return run_with_ray(cells, sweep_dir, opts, on_result, task_kw)
    return run_with_submitit(cells, sweep_dir, opts, on_result, task_kw)
