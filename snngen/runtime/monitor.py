"""Monitors: what a network records, as the simulator hands it over.

A :class:`Monitor` is made by ``Network.monitor_spikes``, ``monitor_state`` or
``monitor_rate`` and filled by the :class:`~snngen.runtime.simulator.Simulator` after each run.
"""

from __future__ import annotations

import numpy as np


class Monitor:
    """Results of a monitor, filled by the simulator; arrays are NumPy.

    State and rate monitors keep one block of records per run and join them when ``data``
    (or a field such as ``.v``) is first read after a run, so a run never holds two copies of
    what was recorded before it. ``mon.data = {}`` forgets everything recorded so far.
    """

    def __init__(self, kind, pop, variables=(), indices=None, every=1):
        self.kind, self.pop = kind, pop
        self.variables, self.every = tuple(variables), int(every)
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int32)
        self._blocks: list[np.ndarray] = []
        self._data: dict[str, np.ndarray] = {}
        self._joined = True

    @property
    def data(self) -> dict:
        """Every field recorded so far, by name."""
        if not self._joined:
            self._data = self._assemble()
            self._joined = True
        return self._data

    @data.setter
    def data(self, value: dict):
        self._blocks, self._data, self._joined = [], dict(value), True

    def _append(self, block: np.ndarray) -> None:
        """Add the records of one run (state: batch x records x variables x neurons; rate:
        batch x steps of spike counts)."""
        self._blocks.append(block)
        self._joined = False

    def _assemble(self) -> dict:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks, axis=1)]
        allv, dt = self._blocks[0], self.pop.net.dt
        if self.kind == "rate":
            return {"counts": allv, "rate": allv / (self.pop.n * dt),
                    "t": np.arange(allv.shape[1]) * dt}
        # recorded at the start of steps 0, every, 2 every, ...: the state at t = step * dt
        # (the initial state first), as Brian2's StateMonitor records it
        data = {"_all": allv, "t": np.arange(allv.shape[1]) * self.every * dt}
        for j, v in enumerate(self.variables):
            data[v] = allv[:, :, j, :]
        return data

    def held_bytes(self) -> int:
        """Bytes of host memory this monitor's results hold (views counted once)."""
        seen, total = set(), 0
        for arr in [*self._blocks, *self._data.values()]:
            if isinstance(arr, np.ndarray):
                base = arr if arr.base is None else arr.base
                if id(base) not in seen:
                    seen.add(id(base))
                    total += getattr(base, "nbytes", arr.nbytes)
        return total

    def __getattr__(self, item):
        if "_blocks" not in self.__dict__:  # during construction or unpickling
            raise AttributeError(item)
        data = self.data
        if item in data:
            return data[item]
        raise AttributeError(f"monitor has no field '{item}' (have: {', '.join(data) or 'none'}; "
                             "run the simulation first)")

    def __repr__(self) -> str:
        return f"Monitor({self.kind} of '{self.pop.name}')"
