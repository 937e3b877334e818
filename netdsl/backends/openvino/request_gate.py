"""Keeping the creation of an infer request apart from running the model's other requests.

OpenVINO 2026.4's CPU plugin: ``create_infer_request`` on a compiled model with dynamic input dims
while another request of the same compiled model runs (its shapes changing from call to call) now
and then crashes the process (a segfault within a minute of one thread creating requests while four
infer mixed batch sizes; no crash in the same runs on a model with static dims, or with requests
created while none runs), and rarely fails with "Unsupported data type" instead. A
:class:`RequestGate` lets any number of runs go together and a creation only when none runs; runs
that start while a creation waits wait for it (creations are rare: one per thread, or per
``run_many`` set of requests), so a creation is never starved by a stream of calls.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator


class RequestGate:
    """Runs share the gate (:meth:`running` or :meth:`enter`/:meth:`leave`); :meth:`create` has it alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._creating = False
        self._waiting = 0  # creations waiting for the runs in flight to end

    def enter(self) -> None:
        """A run starts (waits while a creation is under way or waiting)."""
        with self._cond:
            while self._creating or self._waiting:
                self._cond.wait()
            self._running += 1

    def leave(self) -> None:
        """A run entered with :meth:`enter` has ended."""
        with self._cond:
            self._running -= 1
            if self._running == 0:
                self._cond.notify_all()

    @contextmanager
    def running(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def create(self, make: Callable[[], Any]) -> Any:
        """``make()`` (which creates requests) once no run is in flight; never call it from a run."""
        with self._cond:
            self._waiting += 1
            try:
                while self._creating or self._running:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._creating = True
        try:
            return make()
        finally:
            with self._cond:
                self._creating = False
                self._cond.notify_all()


class OpenGate(RequestGate):
    """The gate of a model with static dims: runs and creations go together (no wait, no lock)."""

    def enter(self) -> None:
        pass

    def leave(self) -> None:
        pass

    def create(self, make: Callable[[], Any]) -> Any:
        return make()


def gate_for(dynamic: bool) -> RequestGate:
    """A :class:`RequestGate` for a compiled model with dynamic input dims, an :class:`OpenGate` otherwise."""
    return RequestGate() if dynamic else OpenGate()
