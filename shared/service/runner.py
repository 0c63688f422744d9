"""Running an aiohttp application until interrupted, with uvloop where it is installed: in one process, or
in several that share the port (the seeder: one Python process moves at most one core's worth of bytes).

Several processes share the port with SO_REUSEPORT, so the kernel spreads the connections among them.
The parent only supervises: it forks them, says it is ready once every one listens, and stops them all on
SIGTERM or SIGINT, or when one of them dies (then it exits 1, so a service manager restarts the lot).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import gc
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

from aiohttp import web

from shared.service.observability import configure_logging

PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 10.0
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


def install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def die_with_parent() -> None:
    """On Linux, this process gets SIGTERM if its parent dies without cleaning up (kill -9), so none is orphaned."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def run(
    app: web.Application,
    host: str,
    port: int,
    on_ready: Callable[[], object] | None = None,
    log_format: str = "json",
    reuse_port: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready` runs once the port is really listening (tests wait for it).

    Logs go to stderr in `log_format` (`json` or `text`: the service's settings say which).
    """
    configure_logging(log_format)
    install_uvloop()

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=True)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
            except OSError as exc:
                raise SystemExit(_cannot_listen(host, port, exc)) from None
            gc.freeze()  # what start-up made lives as long as the process: the collector need not walk it each pass
            if on_ready:
                on_ready()
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except (web.GracefulExit, KeyboardInterrupt):
        pass


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    reason = "another program has it" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return f"Error: cannot listen on {host}:{port} ({reason}); stop it or choose another --port"


def run_processes(
    make_app: Callable[[], web.Application],
    host: str,
    port: int,
    processes: int,
    on_ready: Callable[[int], None] | None = None,
    log_format: str = "json",
) -> None:
    """Serve `make_app()` from `processes` forked processes sharing HOST:PORT; `on_ready(port)` once all listen.

    Port 0 picks a free port (told to `on_ready`). Returns after SIGTERM or SIGINT has stopped every process;
    exits 1 if one of them died on its own.
    """
    if processes <= 1:
        run(make_app(), host, port, on_ready=(lambda: on_ready(port)) if on_ready else None, log_format=log_format)
        return
    configure_logging(log_format)
    reserved = _reserve(host, port)  # bound, never listening: holds the port and resolves port 0
    port = reserved.getsockname()[1]
    ready_r, ready_w = os.pipe()
    parent = os.getpid()
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # taken one by one below, never lost between checks
    pids = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            reserved.close()
            _worker(make_app, host, port, parent, lambda: os.write(ready_w, b"."), log_format)
        pids.append(pid)
    os.close(ready_w)
    try:
        if _wait_ready(ready_r, processes, pids) and on_ready:
            on_ready(port)
        code = _supervise(pids)
    finally:
        _stop(pids)
        os.close(ready_r)
        reserved.close()
    if code:
        sys.exit(code)


def _reserve(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(_cannot_listen(host, port, exc)) from None
    return sock


def _worker(
    make_app: Callable[[], web.Application], host: str, port: int, parent: int, ready: Callable[[], object], log_format: str
) -> None:
    """A forked process: serve until told to stop, then leave without running the parent's exit handlers."""
    code = 0
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        die_with_parent()
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
        run(make_app(), host, port, on_ready=ready, log_format=log_format, reuse_port=True)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = 0 if not exc.code else exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait_ready(ready_r: int, processes: int, pids: list[int]) -> bool:
    """Wait until every process listens; False if a signal or a death came first (it is left pending)."""
    ready = 0
    while ready < processes:
        readable, _, _ = select.select([ready_r], [], [], 0.1)
        if readable:
            data = os.read(ready_r, 64)
            if not data:
                return False
            ready += len(data)
        if signal.sigpending() & _SIGNALS:
            return False
    return True


def _supervise(pids: list[int]) -> int:
    """Block until SIGTERM/SIGINT (0) or until a process exits by itself (1)."""
    while True:
        info = signal.sigwaitinfo(_SIGNALS)
        if info.si_signo != signal.SIGCHLD:
            return 0
        for pid in list(pids):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pids.remove(pid)
                print(
                    f"mist: server process {pid} exited ({_describe(status)}); stopping the others", file=sys.stderr, flush=True
                )
                return 1


def _stop(pids: list[int]) -> None:
    """SIGTERM to every process left, then wait; SIGKILL whichever has not stopped after STOP_TIMEOUT."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_TIMEOUT
    for pid in pids:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            signal.sigtimedwait({signal.SIGCHLD}, 0.05)  # wakes at once when a process exits
    pids.clear()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
