"""Helpers shared by the benchmark scripts (not a benchmark itself).

run_json() runs one benchmark command in a subprocess and parses its JSON result line;
median(), machine() and table() summarise. Import from a benchmark script with
`from common import ...` (scripts run as `python benchmarks/<name>.py`, so benchmarks/ is on
sys.path).
"""

import datetime
import importlib.metadata
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import threading
import time


def run_json(cmd, timeout=None, env=None, cwd=None):
    """Run cmd (a list); return the JSON object its stdout ends with, plus harness fields.

    Harness fields: cmd, wall_s, rc, ext_rss_mib (peak RSS of the child and the descendants
    it waited for, from wait4, so it is measured the same way for every implementation).
    On failure the dict has "error" (with the end of stderr) instead of the child's fields.
    The child gets its own session so that a timeout kills its compilers and binaries too.
    """
    full_env = None if env is None else {**os.environ, **env}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    )
    out = {}

    def drain(name, stream):  # read both pipes concurrently so neither can fill up and block
        out[name] = stream.read()

    readers = [
        threading.Thread(target=drain, args=(k, s), daemon=True)
        for k, s in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for r in readers:
        r.start()
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer:
        timer.start()
    # wait4 (not Popen.wait) because it also returns the child's resource usage.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    if timer:
        timer.cancel()
    for r in readers:
        r.join()
    rec = {
        "cmd": " ".join(map(str, cmd)),
        "wall_s": time.perf_counter() - t0,
        "rc": proc.returncode,
        "ext_rss_mib": usage.ru_maxrss / 1024,
    }
    stdout, stderr = out.get("stdout", ""), out.get("stderr", "")
    if timed_out:
        return {**rec, "error": f"timeout after {timeout} s"}
    result = None
    for line in reversed(stdout.splitlines()):
        if line.strip():
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                pass
            break  # only the last non-empty line counts
    if proc.returncode != 0 or not isinstance(result, dict):
        tail = (stderr.strip() or stdout.strip())[-800:]
        why = f"exit {proc.returncode}" if proc.returncode else "last line is not a JSON object"
        return {**rec, "error": f"{why}: {tail}"}
    return {**result, **rec}


def median(values):
    """Median of the numbers in values, ignoring None; None if there are none."""
    xs = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(xs) if xs else None


def peak_rss_mib():
    """Peak RSS of this process, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine():
    """Where and when: CPU model, cores, load, date, Python and numpy/numba versions."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for pkg in ("numpy", "numba"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        # Other jobs on the machine skew timings; the load average says whether there were any.
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


def fmt(v, digits=3):
    """Short text for a table cell: None -> '-', floats to `digits` significant figures."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 10**digits else f"{v:.0f}"
    return str(v)


def table(rows, columns):
    """Plain-text table of rows (dicts) with the given columns (keys), aligned."""
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
