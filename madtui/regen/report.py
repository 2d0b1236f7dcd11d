"""The regen report for people: the gates, what differs per recording, the diffs' sizes, the cost."""
from __future__ import annotations

import json
from typing import Any

RULES = {"against": "given with --against", "golden": "golden", "last": "the last recordings of it"}


def short(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def interface_line(interface: dict[str, list[str]] | None) -> str:
    if interface is None:
        return "not compared"
    parts = [f"{what} {', '.join(interface[what])}" for what in ("added", "removed", "changed") if interface.get(what)]
    return "; ".join(parts) if parts else "same tools and schemas"


def render(report: dict[str, Any]) -> str:
    mad = report["mad"]
    candidate = report["candidate"]
    lines = [f"regen {mad} #{candidate['number']}  ({candidate['path']})"]
    static = report["static"]
    lines.append("static gate:  " + ("passed" if static["ok"] else f"FAILED at {static['stage']}: {static['error']}"))
    lines.append("interface:    " + interface_line(report.get("interface")))
    behaviour = report.get("behaviour")
    if behaviour is None:
        lines.append("behaviour:    not re-run (the static gate failed)")
    else:
        gate = report["gate"]
        lines.append(f"behaviour:    {gate['recordings']} recording{'s' * (gate['recordings'] != 1)} "
                     f"({RULES.get(behaviour['chosen_by'], behaviour['chosen_by'])}), {gate['events']} events "
                     f"in {gate['seconds']:.1f} s, {gate['llm_tokens']} LLM tokens")
        if behaviour.get("error"):
            lines.append(f"  {behaviour['error']}")
        for entry in behaviour["recordings"]:
            name = entry["recording"]
            if entry["status"] == "unusable":
                lines.append(f"  {name}  unusable: {entry['reason']}")
            elif entry["status"] == "same":
                noise = len(entry.get("noise", []))
                lines.append(f"  {name}  same" + (f" (noise learned: {noise} field{'s' * (noise != 1)})" if noise else ""))
            else:
                for diverged in entry["diverged"]:
                    d = entry["mads"][diverged]["first_divergence"]
                    lines.append(f"  {name}  DIFFERS: {diverged} at its event {d['index'] + 1}")
                    lines.append(f"      recorded:  {short(d['recorded'])}")
                    lines.append(f"      candidate: {short(d['candidate'])}")
    code = report["code"]
    lines.append(f"code:         +{code['lines_added']} -{code['lines_removed']} lines "
                 f"({code['lines_before']} -> {code['lines_after']})")
    generation = report["generation"]
    if generation["generated"]:
        lines.append(f"generation:   {generation['attempts']} attempt{'s' * (generation['attempts'] != 1)}, "
                     f"{generation['input_tokens']} tokens in, {generation['output_tokens']} out, "
                     f"cost {generation['cost']:.4f}")
        for error in generation["errors"]:
            lines.append(f"  attempt {error['attempt']} failed at {error['stage']}: {error['error']}")
    else:
        lines.append("generation:   none (given with --candidate), 0 tokens")
    verdict = {"same": "same behaviour", "differs": "behaviour differs", "failed": "the gate failed"}[report["verdict"]]
    applied = report.get("applied")
    if applied:
        lines.append(f"applied:      {applied['path']} (the previous version is kept; mad regen --rollback {mad})")
    elif report["verdict"] == "same":
        lines.append("not applied:  pass --apply to write it")
    elif report["verdict"] == "differs":
        lines.append("not applied:  review the differences; --apply --accept-changes writes it")
    lines.append(verdict)
    return "\n".join(lines)
