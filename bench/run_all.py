"""Run every benchmark one after the other (about 5 minutes) and keep their output in bench/results/.

* ``hotpath_bench.py``         - the per-call and per-record functions in-process, against the stored
  baseline ``bench/hotpath_baseline.json`` (exit 1 on a regression);
* ``sandbox_bench.py``         - requests/s the Gorgias sandbox answers on one core (3 scenarios x 5 s);
* ``http_transport_bench.py``  - httpx vs the aiohttp-backed transport, raw and through GorgiasClient;
* ``pipeline_bench.py``        - the worker end to end against a real broker and the sandbox: 50,000
  unbatched calls and a 200,000-record batched backlog, with the raw-aiokafka baseline.

Each benchmark runs as its own process with a time limit; its output is shown as it comes and written to
``bench/results/<UTC time>/<name>.txt`` (the pipeline's figures also to ``pipeline.json``), with a
``summary.json`` of the machine, the commands, exit codes and durations. ``--backlog 1000000`` adds the
memory run (1,000,000 batched records, a few minutes more). Ctrl-C stops the running benchmark, which
cleans up after itself.

    .venv/bin/python bench/run_all.py
    .venv/bin/python bench/run_all.py --only pipeline --backlog 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NAMES = ("hotpath", "sandbox", "http_transport", "pipeline", "pipeline_backlog")


def commands(out: Path, backlog: int | None) -> dict[str, tuple[list[str], float]]:
    """Name -> (command, time limit in seconds)."""
    py = sys.executable
    found: dict[str, tuple[list[str], float]] = {
        "hotpath": ([py, str(BENCH / "hotpath_bench.py")], 300),
        "sandbox": ([py, str(BENCH / "sandbox_bench.py"), "--seconds", "5"], 300),
        "http_transport": ([py, str(BENCH / "http_transport_bench.py"), "--seconds", "3", "--via-client"], 300),
        "pipeline": ([py, str(BENCH / "pipeline_bench.py"), "--json", str(out / "pipeline.json")], 1200),
    }
    if backlog:
        found["pipeline_backlog"] = ([py, str(BENCH / "pipeline_bench.py"), "--scenario", "batched", "--backlog",
                                      str(backlog), "--json", str(out / "pipeline_backlog.json")], 2400)
    return found


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": sys.version.split()[0]}


def run_one(name: str, cmd: list[str], limit: float, log: Path) -> dict[str, Any]:
    """Run ``cmd``, echoing and saving its output; stop it (SIGINT, then SIGKILL) past ``limit``."""
    print(f"\n=== {name}: {' '.join(Path(c).name if c.endswith('.py') else c for c in cmd[1:])} "
          f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    status: int | str
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, start_new_session=True)
        assert proc.stdout is not None
        deadline = started + limit
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                out.write(line)
                if time.perf_counter() > deadline:
                    raise TimeoutError
            status = proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
        except (TimeoutError, subprocess.TimeoutExpired):
            print(f"{name}: over its {limit:.0f} s limit, stopping it", file=sys.stderr)
            stop(proc)
            status = "timeout"
        except KeyboardInterrupt:
            stop(proc)
            raise
    return {"command": cmd, "exit": status, "seconds": round(time.perf_counter() - started, 1),
            "load_before": load_before, "output": str(log)}


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT (the benchmarks clean up on it), then SIGKILL to the whole group after 60 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="results directory (default bench/results/<time>)")
    parser.add_argument("--only", nargs="+", choices=NAMES, help="run only these benchmarks")
    parser.add_argument("--backlog", type=int, default=None,
                        help="also run the memory run with this batched backlog (e.g. 1000000)")
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or BENCH / "results" / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    todo = commands(out, args.backlog)
    if args.only:
        todo = {k: v for k, v in todo.items() if k in args.only}
    summary: dict[str, Any] = {"started": stamp, "machine": machine(), "runs": {}}
    failed = False
    try:
        for name, (cmd, limit) in todo.items():
            result = run_one(name, cmd, limit, out / f"{name}.txt")
            summary["runs"][name] = result
            failed = failed or result["exit"] != 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        failed = True
    finally:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nresults in {out}")
    for name, result in summary["runs"].items():
        print(f"  {name:<18} exit {result['exit']!s:<8} {result['seconds']:>7.1f} s   {result['output']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
