"""One call, classified: the property every fuzz test checks.

:func:`attempt` runs a zero-argument callable for one generated case. Success and an
``SnngenError`` are fine; anything else fails the property, and so does an error for an input
the strategy marked valid, or a call that runs for more than :data:`HANG_S` seconds.

Under pytest a failure raises ``AssertionError`` (hypothesis then shrinks the case and prints
it). Under ``benchmarks/fuzz.py`` (``SNNGEN_FUZZ_LOG`` names a file) every case is written as
JSON lines instead, a ``start`` line before the call and an ``end`` line after it, and nothing
is raised: the run goes on, and the parent process that reads the log counts the cases, and
turns a start without an end into a hang (it kills the child after :data:`HANG_S`) or a crash
(the child died).
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import threading
import time
import traceback
from pathlib import Path

from snngen.errors import SnngenError

HANG_S = 20.0
_SNNGEN = str(Path(__file__).resolve().parents[2] / "snngen")
_LOG = os.environ.get("SNNGEN_FUZZ_LOG")
_log_file = open(_LOG, "a", buffering=1) if _LOG else None  # noqa: SIM115 - lives all run


class Hang(BaseException):  # noqa: N818 - not an error the product raises; BaseException so
    """Raised by the watchdog alarm in the middle of a call that ran too long."""  # no
    # ``except Exception`` in the product swallows it


def innermost_snngen_frame(exc: BaseException) -> str:
    """``file:line in function`` of the deepest traceback frame inside ``snngen/``."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(_SNNGEN):
            rel = os.path.relpath(frame.filename, os.path.dirname(_SNNGEN))
            where = f"{rel}:{frame.lineno} in {frame.name}"
    return where


def _shown(inputs) -> str:
    try:
        text = repr(inputs)
    except Exception as exc:  # noqa: BLE001 - an odd object whose repr fails
        text = f"<repr failed: {type(exc).__name__}>"
    return text if len(text) <= 600 else text[:600] + f"...({len(text)} chars)"


def _write(event: dict) -> None:
    _log_file.write(json.dumps(event) + "\n")


def _alarm(signum, frame):
    raise Hang(f"call ran for more than {HANG_S:.0f} s")


def attempt(entry: str, call, inputs, *, valid: bool = False):
    """Run ``call()`` for the case ``inputs`` (shown in reports) of entry point ``entry``.

    Returns ``call()``'s value, or None when it raised an ``SnngenError`` (or, in the long
    run, any error: it is logged then)."""
    shown = _shown(inputs)
    if _log_file:
        _write({"ev": "start", "entry": entry, "t": time.time(), "input": shown})
    use_alarm = threading.current_thread() is threading.main_thread()
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
    if not _log_file:  # under pytest: a hang in C code (no alarm gets in) ends the run with
        faulthandler.dump_traceback_later(HANG_S + 40, exit=True)  # its traceback, not never
    t0 = time.perf_counter()
    result, outcome, exc_info = None, "ok", None
    try:
        result = call()
    except SnngenError as exc:
        outcome, exc_info = ("rejected" if valid else "snngen"), exc
    except (Exception, Hang) as exc:  # noqa: BLE001 - classifying every exception is the point
        outcome, exc_info = ("hang" if isinstance(exc, Hang) else "other"), exc
    finally:
        if not _log_file:
            faulthandler.cancel_dump_traceback_later()
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - t0
    report = None
    if outcome in ("other", "rejected", "hang"):
        report = {"entry": entry, "outcome": outcome, "type": type(exc_info).__name__,
                  "message": str(exc_info)[:400], "where": innermost_snngen_frame(exc_info),
                  "input": shown}
    if _log_file:
        event = {"ev": "end", "entry": entry, "outcome": outcome, "s": round(seconds, 4)}
        if outcome == "snngen":
            event["type"] = type(exc_info).__name__
        if report:
            event.update(report)
        _write(event)
        return result
    if report:
        what = {"other": "raised a non-snngen exception",
                "rejected": "rejected a VALID input",
                "hang": f"ran for more than {HANG_S:.0f} s"}[outcome]
        raise AssertionError(f"{entry} {what}: {report['type']}: {report['message']}\n"
                             f"  innermost snngen frame: {report['where']}\n"
                             f"  input: {shown}") from exc_info
    return result
