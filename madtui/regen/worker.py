"""A re-run worker: one process of the behavioural gate's pool, re-running recordings one after another.

It reads one JSON job per line on stdin and answers one JSON line each, on its own channel
(what MADs print goes to stderr):

    job:    {"source", "sessions", "mad_path": [...] | null, "replace": [...], "only": [...] | null,
             "compare": bool}
    answer: {"journal", "inputs", "same_as_recording", "llm_unrecorded", "steps": {mad: [[seq, step], ...]}}
            or {"error"}

`steps` is each MAD's behaviour, normalised (`madtui.diff.behaviour`): worked out here, in parallel.

The imports are paid once per worker, not once per recording.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from madtui.diff import behaviour
    from madtui.rerun import rerun
    from mads.kernel import MadError

    mad_path = [Path(p) for p in job["mad_path"]] if job.get("mad_path") is not None else None
    try:
        result = asyncio.run(rerun(Path(job["source"]), sessions=Path(job["sessions"]), mad_path=mad_path,
                                   replace=[Path(p) for p in job.get("replace", [])], only=job.get("only"),
                                   compare_to_source=job.get("compare", True)))
    except MadError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a candidate's fault reaching the re-run: the recording cannot judge it
        return {"error": f"the re-run failed: {type(exc).__name__}: {exc}".splitlines()[0]}
    return {"journal": str(result.journal), "inputs": result.inputs,
            "same_as_recording": result.report.get("same"), "llm_unrecorded": result.llm_unrecorded,
            "steps": behaviour(result.journal).steps}


def main() -> None:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import madtui.rerun  # noqa: F401 - loaded before the first job arrives

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(json.dumps(run_job(json.loads(line)), default=str) + "\n")
        out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
