"""``splitinf-edge --engine ray``: the tail on Ray Serve replicas, behind the same ZeroMQ front.

The front (:class:`~splitinf.runtime.edge.EdgeServer`) keeps everything it does in process — handshakes,
fingerprints, CurveZMQ, validation, per-device accounting, budgets — and hands each frame's still-compressed
payload (a few KB: cheaper to ship than decoded features) to a Serve deployment whose replicas each run a
:class:`~splitinf.runtime.tail_runner.TailRunner`; ``@serve.batch`` gathers the frames of all devices into
batches on each replica. Requests go out from a pool of threads (a blocking ``.result()`` each) and their
answers come back to the front's event loop through a wake-up socket, so the loop never waits on Ray.

A frame whose replica dies under it is sent once more (Serve routes it to a live replica and restarts the
dead one); a second failure answers it ``unavailable``, which a device treats as an unreachable edge (it backs
off, and answers the frame locally where it may). If Ray itself is gone, every frame is answered so, and
counted; the front says so once on stderr (and once more when the tail serves again) and keeps serving its
sockets.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from splitinf.runtime.tail_runner import TailJob, TailOutcome

APP = "splitinf-tail"
REPLICA_TITLE = f"ray::ServeReplica:{APP}:"  # how a replica's process names itself (ps, /proc/PID/cmdline)
HEALTH_CHECK_S = 2.0  # Serve's default 10 s left a dead replica unreplaced that long
REQUEST_TIMEOUT_S = 30.0  # a replica that does not answer a frame within this is taken as failed for it
PING_EVERY_S = 1.0  # how often the front asks the deployment whether it serves (a lost Ray hangs, not fails)
PING_TIMEOUT_S = 5.0
SHUTDOWN_TIMEOUT_S = 60.0


def ray_modules():
    """ray and ray.serve, or one clear error naming what to install."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise ValueError("--engine ray needs Ray Serve, which is not installed: pip install 'splitinf[ray]'") \
            from None
    return ray, serve


@dataclass(frozen=True)
class RayOptions:
    replicas: int = 1
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0
    threads_per_replica: int = 1
    address: str | None = None  # None: start a local Ray; "auto" or an address: join that cluster

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"--replicas must be at least 1, got {self.replicas}")
        if self.cpus_per_replica < 0 or self.gpus_per_replica < 0:
            raise ValueError(f"--cpus-per-replica and --gpus-per-replica must be ≥ 0, got {self.cpus_per_replica} "
                             f"and {self.gpus_per_replica}")


def tail_deployment(serve, max_batch: int):
    """The Serve deployment: one TailRunner per replica, frames batched across devices by @serve.batch.
    No batch wait: frames gather by themselves while a replica computes, and a lone device's frame waited the
    whole timeout for nothing (the front's 5 ms made Ray's per-frame overhead 16 ms instead of 9–10)."""

    @serve.deployment(name="tail")
    class TailReplica:
        def __init__(self, model: str, weights: str | None, split: str | None, bottleneck: str | None, codec: str,
                     threads: int, device: str) -> None:
            import torch

            from splitinf.runtime.setup import ModelSetup
            from splitinf.runtime.tail_runner import TailRunner

            torch.set_num_threads(threads)
            self.runner = TailRunner(ModelSetup.build(model, weights, split, bottleneck, codec), device)

        async def ping(self) -> bool:
            return True

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=0.0)
        async def __call__(self, jobs: list[TailJob]) -> list[TailOutcome]:
            outcomes, _ = self.runner(jobs)
            return outcomes

    return TailReplica


def reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Refuse an explicit ``host:port`` that accepts no connection now (ray.init would retry it for minutes)."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"--engine ray: cannot start or reach {address} ({reason}); start Ray there (ray start "
                         "--head) or leave --ray-address out to start a local one") from None


class RayTail:
    """The deployment and the front's way to it: :meth:`submit` a job, get its outcome in a callback."""

    def __init__(self, model_args: dict, options: RayOptions, *, max_batch: int, device: str, workers: int) -> None:
        self.ray, self.serve = ray_modules()
        self.options = options
        reachable(options.address)
        if options.address is None:
            # Ray starts its workers at nice 15 so that its daemons stay responsive; here the replicas are the
            # work, and at nice 15 they lost ~10 ms per frame to the front and the devices on a busy machine.
            # A cluster this front joins keeps its operator's choice.
            os.environ.setdefault("RAY_worker_niceness", "0")
        try:
            self.ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                          configure_logging=False, ignore_reinit_error=True,
                          **({} if options.address else {"num_cpus": os.cpu_count()}))
        except Exception as exc:
            where = options.address or "a local Ray"
            raise ValueError(f"--engine ray: cannot start or reach {where} ({type(exc).__name__}: {exc})") from None
        deployment = tail_deployment(self.serve, max_batch).options(
            num_replicas=options.replicas, max_ongoing_requests=4 * max_batch,
            health_check_period_s=HEALTH_CHECK_S,
            ray_actor_options={"num_cpus": options.cpus_per_replica, "num_gpus": options.gpus_per_replica})
        app = deployment.bind(model_args["model"], model_args["weights"], model_args["split"],
                              model_args["bottleneck"], model_args["codec"], options.threads_per_replica, device)
        if options.address is None:  # no HTTP proxy: the ZeroMQ front is this deployment's only way in
            self.serve.start(proxy_location="Disabled")
        self.handle = self.serve.run(app, name=APP, route_prefix=None)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ray-tail")
        self.retried = 0
        self.failing: str | None = None  # why the tail is taken for unavailable, while it is
        self.lock = threading.Lock()
        self.closed = threading.Event()
        threading.Thread(target=self._watch, daemon=True, name="ray-tail-watch").start()

    def submit(self, job: TailJob, done: Callable[[TailOutcome], None]) -> None:
        failing = self.failing
        if failing:  # answered at once: a request to a lost Ray hangs instead of failing
            done(TailOutcome(error=("unavailable", f"the edge's Ray tail does not serve ({failing})")))
        else:
            self.pool.submit(lambda: done(self._call(job)))

    def _watch(self) -> None:
        """Ask the deployment every second whether it serves: when Ray is lost, requests hang rather than fail,
        so only an unanswered ping tells; an answered one is what ends a failing spell (frames are not sent
        meanwhile, so none could)."""
        while not self.closed.wait(PING_EVERY_S):
            try:
                self.handle.ping.remote().result(timeout_s=PING_TIMEOUT_S)
            except Exception as exc:
                if not self.closed.is_set():
                    self._health(f"{type(exc).__name__}: {str(exc)[:200]}")
            else:
                self._health(None)

    def _call(self, job: TailJob) -> TailOutcome:
        for attempt in (1, 2):
            try:
                return self.handle.remote(job).result(timeout_s=REQUEST_TIMEOUT_S)
            except Exception as exc:  # the replica died or Ray is gone: once more, then the frame fails
                if attempt == 1:
                    with self.lock:
                        self.retried += 1
                    continue
                why = f"{type(exc).__name__}: {str(exc)[:200]}"
                self._health(why)
                return TailOutcome(error=("unavailable", f"the edge's Ray tail failed twice ({why})"))
        raise AssertionError("unreachable")

    def _health(self, failure: str | None) -> None:
        """Say when the tail starts failing and when it serves again (once each, not per frame)."""
        with self.lock:
            changed, self.failing = (failure is None) != (self.failing is None), failure
        if changed and failure:
            print(f"splitinf-edge: the Ray tail is failing ({failure}); frames are answered 'unavailable' until "
                  "it serves again", file=sys.stderr, flush=True)
        elif changed:
            print("splitinf-edge: the Ray tail serves again", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop the local Ray this front started; on a cluster it joined, leave the deployment to the other
        fronts that share it and only disconnect. A Ray that is lost is not waited for: its shutdown would
        retry the dead GCS for a minute."""
        self.closed.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

        def shut_down() -> None:
            try:
                if self.options.address is None and self.failing is None:
                    self.serve.shutdown()
            finally:
                self.ray.shutdown()

        closer = threading.Thread(target=shut_down, daemon=True, name="ray-shutdown")
        closer.start()
        closer.join(timeout=SHUTDOWN_TIMEOUT_S if self.failing is None else 5.0)
