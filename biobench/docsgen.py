"""Generated documentation: the reference parts of the docs come from the code, never by hand.

- ``docs/protocol-reference.md``: every protocol key with its type, default and description,
  from :mod:`biobench.schema` (``PROTOCOL``, ``DEFAULTS``, ``DESCRIPTIONS``);
- ``docs/cli.md``: every command and option with its help, from the click commands;
- the example plugin's files shown in ``docs/plugins.md``, from ``tests/example_plugin``;
- the table of protocols in ``docs/protocols.md``, from the protocol files in ``protocols/``;
- the run times quoted in ``README.md`` and ``docs/protocols.md``, from the committed run records
  (``timings.total_s`` and ``environment.cpu_math`` of ``leaderboards/runs``), and the README's
  links to the committed boards.

Whole files are rewritten; inside a hand-written file only the text between
``<!-- generated: NAME ... -->`` and ``<!-- end of NAME -->`` is.  ``python -m biobench.docsgen``
rewrites everything (``make docs``); ``--check`` writes nothing and exits 1 naming each stale
file, which is what the tests do.  The README's results section has its own generator
(:mod:`biobench.leaderboard.readme`), which ``make docs`` runs too.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from biobench import schema
from biobench.atomic import write_text
from biobench.errors import BiobenchError

__all__ = [
    "COMMAND",
    "DOCUMENTS",
    "board_links",
    "check",
    "cli_reference",
    "demo_time",
    "example_files",
    "fill",
    "generate",
    "plugin_guide",
    "protocol_reference",
    "protocol_table",
    "regions",
    "run_time_table",
    "run_times",
    "schema_keys",
    "update",
]

#: The command that regenerates every generated part (named in every staleness message).
COMMAND = "make docs (or: python -m biobench.docsgen)"
#: Where the example plugin lives, relative to the repository root.
EXAMPLE_PLUGIN = "tests/example_plugin"
#: Leaderboard folder whose run records the quoted run times come from.
LEADERBOARDS = "leaderboards"
_SKIP_PARTS = {"__pycache__", "build", "dist"}
_LANGUAGES = {".py": "python", ".toml": "toml"}


# --------------------------------------------------------------------------- protocol reference


def schema_keys(node: Any = schema.PROTOCOL, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every key of the protocol schema as ``(dotted path, node)``, depth first.

    Entries of a list of tables are ``path[].key``; a union holding a table (a metric entry)
    yields that table's keys.  The run-cell tables inside ``[[runs]]`` are not repeated: they are
    the top-level ones.
    """
    table = _table_of(node)
    if table is None:
        return
    for key, sub in table.items():
        if prefix == "runs[]" and key in schema.CELL:
            continue
        path = f"{prefix}.{key}" if prefix else key
        yield path, sub
        inner = sub[1] if isinstance(sub, tuple) and sub and sub[0] == "list" else sub
        child = f"{path}[]" if inner is not sub else path
        yield from schema_keys(inner, child)


def _table_of(node: Any) -> dict[str, Any] | None:
    if isinstance(node, tuple) and node and node[0] == "table":
        return node[1]
    if isinstance(node, tuple) and node and node[0] == "union":
        for option in node[1:]:
            table = _table_of(option)
            if table is not None:
                return table
    return None


def _type(node: Any) -> str:
    """A schema node in words (``a list of strings or tables``)."""
    if node == schema.ANY:
        return "a table of options"
    if isinstance(node, type):
        return schema._describe(node)
    kind = node[0]
    if kind == "range":
        _, number, low, high, low_open, high_open = node
        name = schema._describe(number)
        if high is None:
            return f"{name} {'>' if low_open else '>='} {_bound(low)}"
        return (
            f"{name} in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}"
            f"{')' if high_open else ']'}"
        )
    if kind == "list":
        return f"a list of {_plural(node[1])}"
    if kind == "dict":
        return f"a table of {_plural(node[1])}"
    if kind == "table":
        return "a table"
    if kind == "union":
        return " or ".join(_type(n) for n in node[1:])
    return "one of " + ", ".join(f"`{_toml(v)}`" for v in node)


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _plural(node: Any) -> str:
    """What a list or table holds, in the plural (``strings``, ``integers in [0, 9]``)."""
    if isinstance(node, tuple) and node and node[0] == "union":
        return " or ".join(_plural(n) for n in node[1:])
    if isinstance(node, tuple) and node and node[0] not in ("range", "list", "dict", "table"):
        return "values among " + ", ".join(f"`{_toml(v)}`" for v in node)
    text = _type(node)
    for single, many in (("a string", "strings"), ("an integer", "integers"),
                         ("a number", "numbers"), ("a boolean", "booleans"),
                         ("a table", "tables"), ("a list", "lists")):  # fmt: skip
        if text.startswith(single):
            return many + text[len(single) :]
    return text


def _toml(value: Any) -> str:
    """A default as TOML writes it inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _default(path: str) -> str:
    node: Any = schema.DEFAULTS
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    if isinstance(node, dict) and node and path.count(".") == 0:
        return ""  # a whole table's defaults are listed key by key
    return f"`{_toml(node)}`"


def _text(text: str) -> str:
    """Plain text for Markdown: ``<`` and ``*`` outside code spans escaped (GitHub would take
    ``<protocol>`` for an HTML tag and drop it)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "\\<").replace("*", "\\*")
    return "`".join(parts)


def _cell(text: str) -> str:
    """Text for a Markdown table cell."""
    return _text(text).replace("|", "\\|").replace("\n", " ")


def protocol_reference() -> str:
    """``docs/protocol-reference.md`` from the schema."""
    sections: dict[str, list[str]] = {}
    order: list[str] = []
    for path, node in schema_keys():
        section = path.rsplit(".", 1)[0] if "." in path else ""
        if section not in sections:
            sections[section] = []
            order.append(section)
        key = path.rsplit(".", 1)[-1]
        description = schema.DESCRIPTIONS.get(path, "")
        sections[section].append(
            f"| `{key}` | {_cell(_type(node))} | {_default(path)} | {_cell(description)} |"
        )
    out = [
        "# Protocol file reference",
        "",
        _generated_note("biobench/schema.py (`PROTOCOL`, `DEFAULTS`, `DESCRIPTIONS`)"),
        "",
        "A protocol is a TOML file, read with the standard library's `tomllib` and validated "
        "against a strict schema before anything runs: an unknown key, a wrong type or a number "
        "out of range is one error naming the file and the key (with a suggestion for a "
        "misspelt key), exit status 2. No Python lives in a protocol; behaviour is referenced "
        "by registry name. `biobench protocols show NAME` prints a protocol with every default "
        "filled in. How to write one, with examples: [protocols.md](protocols.md).",
        "",
        f"Required: {', '.join(f'`{k}`' for k in schema.REQUIRED)} and `dataset.name` (unless "
        "the file `extends` another protocol that has them), `label` in every `[[runs]]` "
        "entry, `metric`, `better` and `than` in every `[[claims]]` entry.",
        "",
        'Ranges: every number refuses NaN and ±inf (`dropout = nan` is an error, not "no '
        "dropout\"); seeds (the protocol's, a run's, "
        f"`dataset.split.seed`, `--seeds`) lie in [0, {schema.MAX_SEED}]; `image_size` is at "
        f"most {schema.MAX_IMAGE_SIZE} and `hidden` at most {schema.MAX_HIDDEN}, so that a typo "
        "is one line naming the key rather than an allocation failure. "
        f"Tables or arrays nested deeper than {_max_nesting()} levels are refused.",
        "",
        "`--set key=value` on the command line overrides any key for every run "
        "(`--set training.epochs=2`, `--set model.backbone_options.width=0.5`); the value is "
        "TOML.",
    ]
    titles = {"": "Top level"}
    for section in order:
        title = titles.get(section)
        if title is None:
            name = section.removesuffix("[]")
            title = f"Entries of `{name}`" if section.endswith("[]") else f"`[{name}]`"
        out += ["", f"## {title}", ""]
        if section == "runs[]":
            out += [
                "Besides these keys, a run may set any key of `[dataset]`, `[model]`, "
                "`[training]`, `[evaluation]`, `metrics` and `seeds`; it is merged onto the "
                "protocol's tables (tables key by key, lists replaced). A run that switches a "
                "component (backbone, fusion, optimizer, dataset, preprocessing) starts that "
                "component's options from empty.",
                "",
            ]
        if section == "metrics[]":
            out += ["An entry of `metrics` is a metric's name, or a table:", ""]
        out += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
        out += sections[section]
    return "\n".join(out) + "\n"


def _max_nesting() -> int:
    from biobench.protocol import MAX_NESTING

    return MAX_NESTING


def _generated_note(source: str) -> str:
    return (
        f"<!-- generated from {source} by python -m biobench.docsgen; do not edit by hand: "
        f"run {COMMAND} -->"
    )


# --------------------------------------------------------------------------- CLI reference


def cli_reference() -> str:
    """``docs/cli.md``: every command with its help, arguments and options.

    Rendered from the click objects' own strings (help, options, defaults, choices, ranges), not
    from click's help formatter, so that the file does not depend on the terminal or on the
    click version that generated it.
    """
    import click

    from biobench.cli import cli

    commands: list[tuple[str, click.Command]] = []

    def walk(command: click.Command, path: str) -> None:
        commands.append((path, command))
        if isinstance(command, click.Group):
            for name in sorted(command.commands):
                walk(command.commands[name], f"{path} {name}")

    walk(cli, "biobench")
    out = [
        "# Command-line reference",
        "",
        _generated_note("the click commands of biobench/cli/"),
        "",
        "Every command and option of `biobench` (`biobench COMMAND --help` prints the same). "
        "`-h` and `--help` work everywhere; `biobench --version` prints the version. Exit "
        "status: see [the README](../README.md#exit-status).",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    for path, command in commands[1:]:
        anchor = path.replace(" ", "-")
        out.append(f"| [`{path}`](#{anchor}) | {_cell(_summary(command))} |")
    for path, command in commands:
        out += ["", f"## {path}", "", f"`{_usage(path, command)}`", ""]
        out += _help_markdown(command.help or "")
        options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
        if options:
            out += ["", "| option | value | default | what it does |", "| --- | --- | --- | --- |"]
            out += [_option_row(option) for option in options]
        if isinstance(command, click.Group):
            subs = ", ".join(f"[`{name}`](#{path.replace(' ', '-')}-{name})" for name in
                             sorted(command.commands))  # fmt: skip
            out += ["", f"Commands: {subs}."]
    return "\n".join(out) + "\n"


def _summary(command: Any) -> str:
    """The first sentence of a command's help."""
    first = _paragraphs(command.help or "")[0] if command.help else ""
    sentence = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0]
    return sentence


def _paragraphs(text: str) -> list[str]:
    return [p for p in inspect.cleandoc(text).split("\n\n") if p.strip()]


def _help_markdown(text: str) -> list[str]:
    """A click help text as Markdown: paragraphs joined, ``\\b`` blocks kept verbatim."""
    out: list[str] = []
    for paragraph in _paragraphs(text):
        lines = paragraph.splitlines()
        if lines[0].strip() == "\b":
            body = lines[1:]
            heading = body[0].strip() if body and body[0].strip().endswith(":") else None
            if heading:
                out += [heading, ""]
                body = body[1:]
            out += ["```text", *inspect.cleandoc("\n".join(body)).splitlines(), "```", ""]
        else:
            out += [_text(" ".join(line.strip() for line in lines)), ""]
    return out[:-1] if out else out


def _usage(path: str, command: Any) -> str:
    import click

    parts = [path, "[OPTIONS]"]
    for param in command.params:
        if isinstance(param, click.Argument):
            name = param.metavar or param.name.upper()
            if param.nargs == -1:
                name += "..."
            parts.append(name if param.required else f"[{name}]")
    if isinstance(command, click.Group):
        parts.append("COMMAND [ARGS]...")
    return " ".join(parts)


def _option_row(option: Any) -> str:
    import click

    names = ", ".join(f"`{name}`" for name in option.opts)
    if option.secondary_opts:
        names += " / " + ", ".join(f"`{name}`" for name in option.secondary_opts)
    kind = option.type
    if option.is_flag:
        value = ""
    elif isinstance(kind, click.Choice):
        value = " \\| ".join(f"`{choice}`" for choice in kind.choices)
    elif option.metavar:
        value = "`" + option.metavar.replace("|", "\\|") + "`"
    else:
        value = _type_name(kind)
    if isinstance(kind, click.IntRange | click.FloatRange):
        value += f" ({_range(kind)})"
    if option.multiple and "repeatable" not in (option.help or ""):
        value += " (repeatable)"
    default = ""
    if option.show_default and option.default is not None:
        if option.is_flag and option.secondary_opts:
            default = f"`{option.opts[0] if option.default else option.secondary_opts[0]}`"
        else:
            default = f"`{option.default}`"
    help_text = " ".join((option.help or "").split())
    if option.required:
        help_text = f"Required. {help_text}".strip()
    return f"| {names} | {value} | {default} | {_cell(help_text)} |"


def _type_name(kind: Any) -> str:
    import click

    if isinstance(kind, click.Path):
        return "`PATH`" if not (kind.dir_okay and not kind.file_okay) else "`DIRECTORY`"
    names = {click.INT: "INTEGER", click.FLOAT: "NUMBER", click.STRING: "TEXT"}
    if kind in names:
        return f"`{names[kind]}`"
    if isinstance(kind, click.IntRange):
        return "`INTEGER`"
    if isinstance(kind, click.FloatRange):
        return "`NUMBER`"
    return f"`{kind.name.upper()}`"


def _range(kind: Any) -> str:
    bounds = []
    if kind.min is not None:
        bounds.append(f"{'>' if kind.min_open else '>='} {kind.min}")
    if kind.max is not None:
        bounds.append(f"{'<' if kind.max_open else '<='} {kind.max}")
    return " and ".join(bounds)


# --------------------------------------------------------------------------- generated regions


def _begin(name: str) -> str:
    return f"<!-- generated: {name}; do not edit by hand: run {COMMAND} -->"


def _end(name: str) -> str:
    return f"<!-- end of {name} -->"


def regions(text: str) -> list[str]:
    """Names of the generated regions of a document, in order."""
    return re.findall(r"^<!-- generated: (.+?); do not edit by hand", text, re.M)


def fill(text: str, name: str, content: str, where: str) -> str:
    """``text`` with region ``name`` holding ``content`` (markers kept)."""
    begin, end = _begin(name), _end(name)
    start = text.find(begin + "\n")
    stop = text.find("\n" + end, start)
    if start < 0 or stop < 0:
        raise BiobenchError(f"{where}: no generated region {name!r} (markers {begin} ... {end})")
    return text[: start + len(begin) + 1] + content.rstrip("\n") + text[stop:]


def example_files(root: Path) -> dict[str, str]:
    """The example plugin's source files by path relative to it (no build output)."""
    base = root / EXAMPLE_PLUGIN
    files = {}
    for path in sorted(base.rglob("*")):
        parts = set(path.relative_to(base).parts)
        if (
            path.is_file()
            and not _SKIP_PARTS & parts
            and not any(p.endswith(".egg-info") for p in parts)
            and path.suffix != ".pyc"
        ):
            files[path.relative_to(base).as_posix()] = path.read_text(encoding="utf-8")
    return files


def example_block(path: str, text: str) -> str:
    """A file of the example plugin as the plugin guide shows it: a fenced block whose first
    line names the file."""
    return f"```{_LANGUAGES.get(Path(path).suffix, 'text')}\n# {path}\n{text.rstrip(chr(10))}\n```"


def plugin_guide(root: Path, text: str) -> str:
    """``docs/plugins.md`` with every ``example:<path>`` region filled from the example plugin;
    a file without a region, or a region without a file, is an error."""
    files = example_files(root)
    named = {r.removeprefix("example:") for r in regions(text) if r.startswith("example:")}
    if named != set(files):
        raise BiobenchError(
            f"docs/plugins.md shows {sorted(named)} but {EXAMPLE_PLUGIN} holds {sorted(files)}: "
            f"add or remove the regions '{_begin('example:<path>')}'"
        )
    for path, content in files.items():
        text = fill(text, f"example:{path}", example_block(path, content), "docs/plugins.md")
    return text


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _machine(data: dict[str, Any]) -> str:
    math = (data.get("environment") or {}).get("cpu_math") or {}
    cpu = f"`{math['cpu']}`" if math.get("cpu") else "an unrecorded processor"
    mode = math.get("mode") or "native"
    avx512 = "with" if any("avx512" in s for s in math.get("instruction_sets", [])) else "without"
    return f"{cpu} {avx512} AVX-512 (`{mode}` CPU math)"


def run_times(root: Path, protocol: str) -> dict[str, Any]:
    """What the committed records of ``protocol`` (its latest version) say about their run
    time: ``records``, ``total_s`` (sum of ``timings.total_s``), ``machines`` (record count by
    processor and kernel mode) and ``version``."""
    from biobench.board.records import load_records

    output = root / LEADERBOARDS
    records = load_records(output / "runs" / protocol, output)
    if not records:
        raise BiobenchError(f"{output / 'runs' / protocol}: no run records to time")
    version = max((r.version or 0) for r in records)
    current = [r for r in records if (r.version or 0) == version]
    total = 0.0
    machines: dict[str, int] = {}
    for record in current:
        seconds = (record.data.get("timings") or {}).get("total_s")
        if not isinstance(seconds, int | float):
            raise BiobenchError(f"{record.path}: no timings.total_s to quote")
        total += float(seconds)
        machine = _machine(record.data)
        machines[machine] = machines.get(machine, 0) + 1
    return {"records": len(current), "total_s": total, "machines": machines, "version": version}


def _demo_jobs(root: Path) -> int:
    """The ``--jobs`` of the Makefile's ``RUN_FLAGS`` (how ``make demo`` runs its grid)."""
    found = re.search(r"^RUN_FLAGS\s*\?=.*--jobs\s+(\d+)", _read(root / "Makefile"), re.M)
    return int(found.group(1)) if found else 1


def _machines(times: dict[str, Any]) -> str:
    machines = sorted(times["machines"].items())
    if len(machines) == 1:
        return machines[0][0]
    return "; ".join(f"{machine}: {n} records" for machine, n in machines)


#: The protocol ``make demo`` runs (the Makefile's demo target).
DEMO_PROTOCOL = "demo"


def demo_time(root: Path) -> str:
    """The README's sentence on how long ``make demo`` takes, from the committed demo board."""
    times = run_times(root, DEMO_PROTOCOL)
    jobs = _demo_jobs(root)
    per_process = times["total_s"] / jobs
    return (
        f"The {times['records']} run{'s' if times['records'] != 1 else ''} of the committed "
        f"`{DEMO_PROTOCOL}` board (version "
        f"{times['version']}) took {_duration(times['total_s'])} of run time together "
        f"(their records' `timings.total_s`) on {_machines(times)}; `make demo` runs them in "
        f"{jobs} processes, so about {_duration(per_process)} plus start-up and the board, "
        "on a machine like that one."
    )


def run_time_table(root: Path) -> str:
    """docs/protocols.md's table of the committed boards' run times."""
    lines = [
        "| protocol | records | run time, summed | made on |",
        "| --- | --- | --- | --- |",
    ]
    for folder in sorted((root / LEADERBOARDS / "runs").iterdir()):
        if not folder.is_dir():
            continue
        times = run_times(root, folder.name)
        lines.append(
            f"| `{folder.name}` (v{times['version']}) | {times['records']} | "
            f"{_duration(times['total_s'])} | {_cell(_machines(times))} |"
        )
    return "\n".join(lines)


def board_links(root: Path) -> str:
    """The README's links to every committed leaderboard (``leaderboards/<protocol>.md`` beside
    its ``<protocol>.csv``)."""
    boards = sorted(
        path.stem
        for path in (root / LEADERBOARDS).glob("*.md")
        if (path.parent / f"{path.stem}.csv").exists()
        and (path.parent / "runs" / path.stem).is_dir()
    )
    if not boards:
        raise BiobenchError(f"{root / LEADERBOARDS}: no leaderboards to link")
    links = ", ".join(f"[`{name}`]({LEADERBOARDS}/{name}.md)" for name in boards)
    return f"The committed leaderboards, with every measured number: {links}."


def protocol_table(root: Path) -> str:
    """docs/protocols.md's table of the protocols shipped in ``protocols/``, from their files."""
    from biobench.protocol import load_protocol

    lines = [
        "| protocol | dataset | runs x seeds | image size, epochs | reported rows | claims "
        "| what it is (its `description`) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in sorted((root / "protocols").glob("*.toml")):
        protocol = load_protocol(path)  # a ProtocolError names the file and the key
        data = protocol.data
        runs = len(data.get("runs", [])) or 1
        claims = data.get("claims")
        lines.append(
            f"| `{protocol.name}` (v{protocol.version}) | `{data['dataset']['name']}` | "
            f"{runs} x {len(data['seeds'])} | {data['model']['image_size']} px, "
            f"{data['training']['epochs']} | {len(data.get('reported', []))} | "
            f"{'not declared' if claims is None else len(claims) or '`[]` (none)'} | "
            f"{_cell(protocol.description)} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- files


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BiobenchError(f"cannot read {path}: {exc.strerror}") from None


def _regions_of(
    root: Path, relative: str, fillers: dict[str, Callable[[], str]]
) -> Callable[[], str]:
    def build() -> str:
        text = _read(root / relative)
        for name, make in fillers.items():
            text = fill(text, name, make(), relative)
        return text

    return build


#: Every generated document, relative to the repository root.
DOCUMENTS = ("docs/protocol-reference.md", "docs/cli.md", "docs/plugins.md", "docs/protocols.md",
             "README.md")  # fmt: skip


def generate(root: Path) -> dict[str, str]:
    """Every generated document's expected text, by path relative to ``root``."""
    root = Path(root)
    builders: dict[str, Callable[[], str]] = {
        "docs/protocol-reference.md": protocol_reference,
        "docs/cli.md": cli_reference,
        "docs/plugins.md": lambda: plugin_guide(root, _read(root / "docs/plugins.md")),
        "docs/protocols.md": _regions_of(
            root,
            "docs/protocols.md",
            {"protocols": lambda: protocol_table(root), "run-times": lambda: run_time_table(root)},
        ),
        "README.md": _regions_of(
            root,
            "README.md",
            {"demo-time": lambda: demo_time(root), "boards": lambda: board_links(root)},
        ),
    }
    return {path: builders[path]() for path in DOCUMENTS}


def check(root: Path) -> list[str]:
    """One line per stale generated document (empty when every one is up to date)."""
    problems = []
    for path, text in generate(root).items():
        current = (root / path).read_text(encoding="utf-8") if (root / path).exists() else None
        if current != text:
            what = "is missing" if current is None else "is stale"
            problems.append(f"{path} {what}: run {COMMAND}")
    return problems


def update(root: Path) -> list[str]:
    """Rewrite the generated documents that changed; their paths."""
    changed = []
    for path, text in generate(root).items():
        target = root / path
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            write_text(target, text)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m biobench.docsgen",
        description="Regenerate (or --check) the generated documentation: " + ", ".join(DOCUMENTS),
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check(args.root)
            for problem in problems:
                print(f"biobench: error: {problem}", file=sys.stderr)
            return 1 if problems else 0
        for path in update(args.root):
            print(f"{path}: rewritten")
    except BiobenchError as exc:
        print(f"biobench: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
