"""`mad tools`, `mad call`, `mad send`, `mad run`: the ecosystem from the command line."""
from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from pydantic_core import to_jsonable_python

from mads.kernel import ArgumentError, Message, UsageError
from mads.kernel.events import HumanInput
from mads.kernel.message import RawJSON, parse_pairs

from .options import ecosystem_options, gather, run_async, stop_on_signals, watch_option
from .streaming import StreamPrinter


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of every tool.")
@ecosystem_options
def tools(as_json: bool, **shared: Any) -> None:
    """List every tool of every MAD: name, description and input schema.

    \b
    Example: mad tools --json | jq '.[].name'
    """

    options = gather(shared)

    async def body(**_: Any) -> None:
        eco = options.ecosystem()
        async with eco.attached():
            specs = eco.tools()
        if as_json:
            click.echo(_dump([spec.describe() for spec in specs.values()]))
            return
        width = max(len(name) for name in specs) if specs else 0
        for name, spec in specs.items():
            required = spec.input_schema.get("required", [])
            optional = [p for p in spec.input_schema.get("properties", {}) if p not in required]
            params = " ".join([f"{p}*" for p in required] + optional)
            click.echo(f"{name:<{width}}  {spec.description}")
            if params:
                click.echo(f"{'':<{width}}    {params}")

    run_async(body)(debug=options.debug)


def _call_arguments(pairs: tuple[str, ...], args_json: str | None) -> dict[str, Any]:
    try:
        arguments = parse_pairs(list(pairs))
    except ValueError as exc:
        raise ArgumentError(str(exc)) from None
    if args_json:
        try:
            extra = json.loads(args_json)
        except json.JSONDecodeError as exc:
            raise ArgumentError(f"--args is not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(extra, dict):
            raise ArgumentError("--args must be a JSON object")
        twice = sorted(set(extra) & set(arguments))
        if twice:
            raise ArgumentError(f"argument {twice[0]!r} is given twice (as key=value and in --args)")
        arguments.update({k: RawJSON(v) for k, v in extra.items()})
    return arguments


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("tool")
@click.argument("pairs", nargs=-1, type=click.UNPROCESSED)
@click.option("--args", "args_json", metavar="JSON", help="Arguments as one JSON object.")
@ecosystem_options
def call(tool: str, pairs: tuple[str, ...], args_json: str | None, **shared: Any) -> None:
    """Call one tool; print its result as JSON on stdout.

    Arguments are key=value (typed by the tool's schema) or key:=JSON (as in httpie).
    Exit 0 on success, 1 when the tool reports an error, 2 for usage errors.

    \b
    Example: mad call rogers_create_conversation name=ops participants:='["human","dewey"]'
    """

    options = gather(shared)

    async def body(**_: Any) -> None:
        arguments = _call_arguments(pairs, args_json)
        eco = options.ecosystem()
        async with eco.attached():  # (with --bus, the other processes' MADs are known from here on)
            spec = eco.tool(tool)
            prepared = eco.prepare(spec, arguments, raw=True)  # usage errors exit 2 before anything starts
        eco.learn_secrets(spec, prepared)  # before anything is recorded, argv included
        with options.record(eco, "call"):
            async with eco:
                eco.hub.emit(HumanInput(mad="human", tool=tool, arguments=to_jsonable_python(prepared, fallback=str),
                                        secret_params=spec.secret_params))
                result = await eco.call_tool(tool, arguments, raw=True)
        click.echo(_dump(result))

    run_async(body)(debug=options.debug)


def _reply_line(reply: Message) -> str:
    data = reply.data if isinstance(reply.data, dict) else {}
    stage = data.get("stage") or {}
    text = reply.content
    prefix = f"@{reply.mentions[0]}" if reply.mentions else ""
    if prefix and text.lower().startswith(prefix):
        text = text[len(prefix):].lstrip(" ")
    figures = []
    if stage:
        figures = [stage.get("name", "?"), f"{stage.get('llm_calls', 0)} LLM calls"]
        if stage.get("tokens"):
            figures.append(f"{stage['tokens']} tokens")
    head = f"── {reply.sender}" + (f" · {' · '.join(figures)}" if figures else "")
    return f"{head}\n{text}"


@click.command()
@click.argument("text")
@click.option("--conversation", "conversation", metavar="ID", help="Conversation to send into (default: main).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for replies.")
@click.option("--json", "as_json", is_flag=True, help="Print the message and its replies as JSON.")
@ecosystem_options(timeout=False)
def send(text: str, conversation: str | None, timeout: float, as_json: bool, **shared: Any) -> None:
    """Send a message from @human onto the bus; print the replies it caused.

    Deterministic commands (@Mad tool key=value) run with no LLM; prose goes to the MAD's
    Imperator. Exit 1 when a MAD replies with an error or does not reply in time.

    \b
    Example: mad send "@Horace write_file path=notes/a.txt content=hello"
    """

    options = gather(shared)

    async def body(**_: Any) -> int:
        eco = options.ecosystem()
        printer = StreamPrinter() if sys.stdout.isatty() and not as_json else None  # a pipe gets it whole
        if printer is not None:
            eco.hub.add_sink(printer)
        probe = Message.create(conversation or "main", "human", text)
        async with eco.attached():
            await eco.check_mentions(probe)
        eco.scrub(probe)  # secret arguments of a command are known before anything is recorded, argv included
        with options.record(eco, "send"):
            async with eco:
                message, replies = await eco.send(text, conversation=conversation, timeout=timeout)
        expected = [m for m in message.mentions if m in eco.runners]
        missing = [m for m in expected if m not in {r.sender for r in replies}]
        if as_json:
            click.echo(_dump({"message": message.to_dict(), "replies": [r.to_dict() for r in replies],
                              "missing": missing}))
        else:
            for reply in replies:
                line = _reply_line(reply)
                click.echo(line.split("\n", 1)[0] if printer is not None and printer.shown(reply) else line)
        for name in missing:
            click.echo(f"mad: error: no reply from @{name} within {timeout:g} s", err=True)
        if not expected and not replies:  # never silent: said to MADs of the conversation, none of them addressed
            click.echo("mad: error: no MAD was addressed and none answered: mention one, for example "
                       "@Dewey search query=hello", err=True)
            return 1
        failed = missing or any("error" in r.tags for r in replies)
        return 1 if failed else 0

    sys.exit(run_async(body)(debug=options.debug))


@click.command()
@watch_option
@ecosystem_options
def run(no_watch: bool, **shared: Any) -> None:
    """Run the ecosystem headless until Ctrl-C; print one ready line.

    \b
    Example: mad run --mad-path ./my_mads
    Example: mad run --bus redis://127.0.0.1:6379/0 --mads horace
    """

    options = gather(shared)

    async def body(**_: Any) -> None:
        started = time.perf_counter()
        eco = options.ecosystem(watch=not no_watch, host_all=True)
        stop = stop_on_signals()
        with options.record(eco, "run") as recording:
            async with eco:
                names = ", ".join(eco.runners)
                where = f"recording {recording.path}" if recording else "not recording"
                click.echo(f"mad: ready in {time.perf_counter() - started:.2f} s: {len(eco.runners)} MADs ({names}); "
                           f"home {options.home}; provider {options.provider}; {where}; Ctrl-C stops")
                sys.stdout.flush()
                await stop.wait()
        click.echo("mad: stopped", err=True)

    run_async(body)(debug=options.debug)




@click.command()
@ecosystem_options
def record(**shared: Any) -> None:
    """Record every process of a distributed ecosystem into one journal, until Ctrl-C.

    It hosts no MAD (unless --mads). The journal holds every process's messages, tool calls,
    LLM calls and crashes, each marked with its process; `mad replay` opens it and `mad rerun`
    re-runs it in one process.

    \b
    Example: mad record --bus redis://127.0.0.1:6379/0
    """

    options = gather(shared)

    async def body(**_: Any) -> None:
        if not options.bus:
            raise UsageError("mad record needs --bus URL: it records a distributed ecosystem")
        eco = options.ecosystem()
        stop = stop_on_signals()
        with options.record(eco, "record") as recording:
            async with eco:
                where = f"recording {recording.path}" if recording else "not recording (--no-record)"
                click.echo(f"mad: {where}: every process of {eco.node.address.shown if eco.node else ''}; "
                           "Ctrl-C stops")
                sys.stdout.flush()
                await stop.wait()
        click.echo("mad: stopped", err=True)

    run_async(body)(debug=options.debug)
