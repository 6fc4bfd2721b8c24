"""bulksync commands in processes of their own, for the tests a kill or a signal must reach.

A test that kills a push with -9 or stops it with Ctrl-C needs the command in another
process. Started as ``python -m bulksync``, each such process first spends about a second
of CPU importing pandas and pandera, and the suite starts some thirty of them. So they are
forked instead from a server process (multiprocessing's "forkserver") that imported
bulksync once. The server is started by ``exec`` of a fresh Python, never forked from a
test worker with threads running, and imports nothing but bulksync and what it needs.

Each command runs what ``python -m bulksync`` runs (``bulksync.cli.run``: click's main,
then flush and ``os._exit``) in a real process of its own, with its own environment,
working folder, signal handlers and exit status, so a kill or a signal lands as on the
console script; only the start is quicker. What only ``python -m bulksync`` itself shows
(the console script, the interpreter's start) is tested by ``run_cli(real_process=True)``
and the wheel test.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import weakref
from pathlib import Path

# What a command imports before it sends: imported once by the server, then shared by
# every process forked from it.
_PRELOAD = ["tests.processes", "bulksync", "bulksync.cli", "bulksync.sync", "bulksync.run",
            "bulksync.preflight", "bulksync.pulling", "bulksync.undo", "bulksync.sheets.read",
            "pandas", "pandera.pandas", "httpx", "openpyxl", "python_calamine", "tqdm"]


def _command(args: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """In the forked process: become ``python -m bulksync ARGS`` in ``cwd`` with ``env``,
    stdout and stderr to the files ``out`` and ``err``."""
    for fd, name in ((1, out), (2, err)):  # first: what goes wrong below is the command's to print
        target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    # As Python sets them up at start: strict stdout, backslash-escaping and line-buffered
    # stderr, each written through at once under PYTHONUNBUFFERED.
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    sys.stdout, sys.stderr = (
        io.TextIOWrapper(open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False),  # noqa: SIM115
                         encoding="utf-8", errors=errors, write_through=unbuffered, line_buffering=fd == 2)
        for fd, errors in ((1, "strict"), (2, "backslashreplace")))
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["bulksync", *args]
    from bulksync.cli import run

    run()


class Command:
    """A bulksync command running in its own process: the parts of ``subprocess.Popen`` the
    tests use (``pid``, ``poll``, ``send_signal``, ``communicate``, ``returncode``)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | None) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        self._folder = tempfile.TemporaryDirectory(prefix="bulksync-command-")
        self._out = os.path.join(self._folder.name, "stdout")
        self._err = os.path.join(self._folder.name, "stderr")
        for name in (self._out, self._err):
            Path(name).touch()  # there to be read before the process has opened them
        # Daemonic: a command a failed test left running is ended when the worker exits,
        # not waited for (see also ``stop_all``).
        self._process = context.Process(target=_command, args=(
            args, env, str(cwd or os.getcwd()), self._out, self._err), daemon=True)
        self._process.start()
        assert self._process.pid is not None
        self.pid: int = self._process.pid
        _RUNNING.add(self)

    @property
    def returncode(self) -> int | None:
        """The exit status, or minus the signal that ended it; None while it runs."""
        return self._process.exitcode

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:  # it ended meanwhile, as Popen.send_signal allows
                pass

    def kill(self) -> None:
        self._process.kill()

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def lines(self, count: int, timeout: float = 30) -> list[str]:
        """The first ``count`` lines it printed, once printed (fewer if it ended first)."""
        deadline = time.monotonic() + timeout
        while True:
            ended = self.returncode is not None  # before the read: what it printed is all there
            printed = Path(self._out).read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
            done = [line for line in printed if line.endswith("\n")][:count]
            if len(done) == count or ended:
                return done
            if time.monotonic() > deadline:
                raise TimeoutError(f"bulksync command {self.pid} printed {len(done)} of {count} lines")
            time.sleep(0.005)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise TimeoutError(f"bulksync command {self.pid} still running after {timeout} s")
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end, then what it printed: (stdout, stderr)."""
        self.wait(timeout)
        out = Path(self._out).read_text(encoding="utf-8", errors="replace")
        err = Path(self._err).read_text(encoding="utf-8", errors="replace")
        self._folder.cleanup()
        return out, err

    def stop(self) -> None:
        """Kill it if it still runs (a test that failed midway), and wait for its end."""
        if self._process.exitcode is None:
            self._process.kill()
            self._process.join(10)
        _RUNNING.discard(self)


_RUNNING: weakref.WeakSet[Command] = weakref.WeakSet()


def stop_all() -> None:
    """Kill the commands still running: after each test (tests/conftest.py), so that a test
    that failed midway leaves none behind."""
    for command in list(_RUNNING):
        command.stop()


def start(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Command:
    """Start ``bulksync ARGS`` in a process of its own, as ``python -m bulksync`` would run it:
    the test environment without its SUPTASK_* variables, plus ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SUPTASK_")}
    full_env.update(env or {})
    return Command(list(args), full_env, cwd)
