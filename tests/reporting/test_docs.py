"""Docs that cannot drift: the generated references are current, the README stays short, the
examples in the docs pass the schema, and every link between the docs resolves."""

from __future__ import annotations

import inspect
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import click
import pytest

from biobench import docsgen, hookspecs, schema
from biobench.errors import BiobenchError, ProtocolError

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_generated_docs_are_current() -> None:
    # Regression: the README's hand-copied protocol reference lacked claims, model.init, requires
    # and preprocessing; its plugin example and MetricOutput signature had drifted from the code.
    assert docsgen.check(REPO) == []


def test_a_stale_document_is_named_with_the_command(tmp_path: Path) -> None:
    for path in ("README.md", "Makefile", "docs", "protocols", "tests/example_plugin"):
        source, target = REPO / path, tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, target)
    runs = tmp_path / "leaderboards/runs/demo/case1-none"
    runs.mkdir(parents=True)
    shutil.copy(REPO / "leaderboards/runs/demo/case1-none/seed-0.json", runs)
    for board in ("demo.md", "demo.csv"):
        shutil.copy(REPO / "leaderboards" / board, tmp_path / "leaderboards")
    docsgen.update(tmp_path)
    assert docsgen.check(tmp_path) == []
    # One record instead of the board's: the quoted run time follows the records.
    readme = (tmp_path / "README.md").read_text()
    assert "The 1 run of the committed `demo` board" in readme
    assert "leaderboards, with every measured number: [`demo`](leaderboards/demo.md)." in readme

    reference = tmp_path / "docs/protocol-reference.md"
    reference.write_text(reference.read_text().replace("`claims`", "`claim`"))
    example = tmp_path / "tests/example_plugin/biobench_example/__init__.py"
    example.write_text(example.read_text() + "\n# changed\n")
    quick = tmp_path / "protocols/quick.toml"
    text = quick.read_text()
    assert '\ndescription = """\\\n' in text
    quick.write_text(text.replace('\ndescription = """\\\n', '\ndescription = """\\\nEdited. ', 1))
    problems = docsgen.check(tmp_path)
    assert problems == [
        f"docs/protocol-reference.md is stale: run {docsgen.COMMAND}",
        f"docs/plugins.md is stale: run {docsgen.COMMAND}",
        f"docs/protocols.md is stale: run {docsgen.COMMAND}",
    ]
    assert docsgen.main(["--root", str(tmp_path), "--check"]) == 1
    assert docsgen.main(["--root", str(tmp_path)]) == 0
    assert docsgen.check(tmp_path) == []
    assert "# changed" in (tmp_path / "docs/plugins.md").read_text()


def test_the_plugin_guide_shows_every_example_file_and_no_other() -> None:
    guide = (REPO / "docs/plugins.md").read_text()
    files = docsgen.example_files(REPO)
    assert "pyproject.toml" in files and "biobench_example/protocols/example-tiny.toml" in files
    extra = guide.replace("example:pyproject.toml", "example:setup.py")
    with pytest.raises(BiobenchError, match="shows .*setup.py.* but tests/example_plugin holds"):
        docsgen.plugin_guide(REPO, extra)
    edited = guide.replace("class MeanColour(nn.Module):", "class MeanColor(nn.Module):")
    assert docsgen.plugin_guide(REPO, edited) == guide


def test_every_schema_key_is_described_once() -> None:
    keys = [path for path, _ in docsgen.schema_keys()]
    assert len(keys) == len(set(keys))
    assert sorted(set(keys) - set(schema.DESCRIPTIONS)) == [], "keys without a description"
    assert sorted(set(schema.DESCRIPTIONS) - set(keys)) == [], "descriptions of no key"
    assert all(text.strip().endswith(".") for text in schema.DESCRIPTIONS.values())


def test_the_protocol_reference_has_every_key() -> None:
    text = (REPO / "docs/protocol-reference.md").read_text()
    for path, _ in docsgen.schema_keys():
        section = path.rsplit(".", 1)[0] if "." in path else ""
        key = path.rsplit(".", 1)[-1]
        assert f"| `{key}` |" in text, path
        if section:
            name = section.removesuffix("[]")
            title = f"## Entries of `{name}`" if section.endswith("[]") else f"## `[{name}]`"
            assert title in text, section
    for needed in ("## Entries of `claims`", "## `[model.init]`", "| `requires` |",
                   "| `preprocessing` |", "| `from_run` |"):  # fmt: skip
        assert needed in text, needed
    assert "| `image_size` | an integer in [1, 4096] | `64` |" in text


def test_the_cli_reference_has_every_command_and_option() -> None:
    from biobench.cli import cli

    text = (REPO / "docs/cli.md").read_text()

    def walk(command: click.Command, path: str) -> None:
        assert f"\n## {path}\n" in text, path
        section = text.split(f"\n## {path}\n", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    assert opt in section, f"{path} {opt}"
                assert param.help, f"{path} {param.opts[0]} has no help"
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    walk(cli, "biobench")


def test_readme_is_short_and_keeps_its_generated_parts() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "![The quick protocol's page" in text and "(docs/leaderboard-site.png)" in text
    assert "<!-- generated: demo-time;" in text and "<!-- results: generated" in text
    # The exit-status contract, data check's 3 included.
    exit_status = text.split("### Exit status", 1)[1].split("\n## ", 1)[0]
    for status in ("0 on success", "2 on bad usage", "1 when a run fails", "3 from `biobench data"):
        assert status in exit_status


def test_the_docs_do_not_quote_the_stale_metric_signature() -> None:
    for doc in DOCS:
        assert "MetricOutput(values, lower_is_better" not in doc.read_text(), doc


def _toml_blocks(path: Path) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```$", path.read_text(), re.M | re.S)


def test_protocol_examples_in_the_docs_pass_the_schema() -> None:
    blocks = _toml_blocks(REPO / "docs/protocols.md")
    assert len(blocks) >= 2
    for block in blocks:
        schema.validate(tomllib.loads(block), schema.PROTOCOL, "docs/protocols.md", "")
    with pytest.raises(ProtocolError, match="unknown key"):
        schema.validate(tomllib.loads(blocks[0] + "\nepochs = 3\n"), schema.PROTOCOL, "x", "")


def test_links_between_the_docs_resolve() -> None:
    for doc in [*DOCS, REPO / "leaderboards/README.md", REPO / "benchmarks/README.md"]:
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            resolved = (doc.parent / path).resolve() if path else doc
            assert resolved.exists(), f"{doc.relative_to(REPO)}: broken link {target}"
            if anchor and resolved.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", resolved.read_text(), re.M)
                slugs = {_slug(h) for h in headings}
                assert anchor in slugs, f"{doc.relative_to(REPO)}: no heading #{anchor} in {path}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@needs_make
def test_make_docs_runs_both_generators() -> None:
    plan = subprocess.run(
        ["make", "-n", "docs", "STAMP="], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "-m biobench.docsgen" in plan
    assert "-m biobench.leaderboard.readme --output leaderboards --write README.md" in plan


def test_the_plugin_guide_shows_every_hook_with_its_parameters() -> None:
    guide = (REPO / "docs/plugins.md").read_text()
    hooks = [
        f for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n[:9] == "biobench_"
    ]
    assert hooks
    for hook in hooks:
        call = f"`{hook.__name__}({', '.join(inspect.signature(hook).parameters)})`"
        assert f"| {call} |" in guide, f"docs/plugins.md: no hooks-table row for {call}"


def _documented_commands() -> list[tuple[str, str]]:
    """Every ``biobench ...`` line of the shell blocks in the README and the guides."""
    lines = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        if doc.name == "cli.md":
            continue  # generated from the commands themselves
        for block in re.findall(r"^```(?:bash|console)\n(.*?)^```$", doc.read_text(), re.M | re.S):
            for line in block.splitlines():
                line = line.removeprefix("$ ")
                if line.startswith("biobench "):
                    lines.append((doc.relative_to(REPO).as_posix(), line))
    return lines


def test_the_commands_in_the_docs_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    # The README's command list is typed by hand: each line must name real commands and options.
    from biobench.cli import cli

    monkeypatch.chdir(REPO)  # paths in the examples (a committed record) are the repository's

    documented = _documented_commands()
    assert len(documented) >= 20
    for doc, line in documented:
        # "[--json]", "[--protocol X]": optional parts, shown in brackets.
        argv = shlex.split(re.sub(r"\[[^\]]*\]", "", line), comments=True)[1:]
        command, path = cli, "biobench"
        while isinstance(command, click.Group) and argv and argv[0] in command.commands:
            path += f" {argv[0]}"
            command = command.commands[argv.pop(0)]
        assert not isinstance(command, click.Group), f"{doc}: {line}: no such command"
        try:
            command.make_context(path, argv)
        except click.ClickException as exc:
            pytest.fail(f"{doc}: {line}: {exc.format_message()}")
