"""What the examples print at their end: a summary with the process's peak memory."""

from __future__ import annotations

import json
import resource


def report(summary: dict, as_json: bool = False) -> dict:
    """``summary`` with the peak resident memory of this process (``peak_rss_mib``), printed
    as one JSON line when ``as_json`` (the examples' ``--json``); returned.

    >>> report({"test_accuracy": 0.97})["test_accuracy"]
    0.97
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {**summary, "peak_rss_mib": round(peak, 1)}
    if as_json:
        print(json.dumps(out))
    return out
