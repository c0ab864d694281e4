"""docs/runbooks.md is pasted at 3 a.m.: every `flask --app app …` command and option it names
must exist, and every link into a section must find that section."""

from __future__ import annotations

import re
from pathlib import Path

import click

DOCS = Path(__file__).resolve().parents[1] / "docs"
RUNBOOKS = DOCS / "runbooks.md"
COMMAND = re.compile(r"flask --app app ((?:[a-z][a-z-]* ?)+)((?:[^`\n#]*?)(?=`|$|#))", re.MULTILINE)
LINK = re.compile(r"\]\(([a-z-]*\.md)?#([^)]+)\)")


def commands_named_in(text: str) -> list[tuple[list[str], list[str]]]:
    """(command words, --options) for each `flask --app app …` in the text."""
    found = []
    for match in COMMAND.finditer(text):
        words = match.group(1).split()
        options = re.findall(r"(?<!\S)(--[a-z][a-z-]*)", match.group(2))
        found.append((words, options))
    return found


def resolve(group: click.Group, ctx: click.Context, words: list[str]) -> click.Command:
    command: click.Command = group
    for word in words:
        if not isinstance(command, click.Group) or command.get_command(ctx, word) is None:
            break
        command = command.get_command(ctx, word)  # type: ignore[assignment]
    return command


def test_every_command_and_option_the_runbooks_name_exists(app):
    named = commands_named_in(RUNBOOKS.read_text())
    assert len(named) > 20
    group = app.cli
    with click.Context(group) as ctx:
        for words, options in named:
            command = resolve(group, ctx, words)
            assert command is not group, f"flask --app app {' '.join(words)}: no such command"
            assert not isinstance(command, click.Group), f"flask --app app {' '.join(words)}: a group, not a command"
            known = {name for param in command.params for name in param.opts}
            assert set(options) <= known, f"flask --app app {' '.join(words)}: unknown {set(options) - known}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_to_a_section_finds_it():
    text = RUNBOOKS.read_text()
    links = LINK.findall(text)
    assert links
    for file, anchor in links:
        target = DOCS / file if file else RUNBOOKS
        headings = {slug(h) for h in re.findall(r"^#+ (.+)$", target.read_text(), re.MULTILINE)}
        assert anchor in headings, f"{file or 'runbooks.md'}#{anchor}: no such section"


def test_the_telephony_doc_links_to_a_runbook_section_that_exists():
    headings = {slug(h) for h in re.findall(r"^#+ (.+)$", RUNBOOKS.read_text(), re.MULTILINE)}
    for anchor in re.findall(r"\(runbooks\.md#([^)]+)\)", (DOCS / "telephony.md").read_text()):
        assert anchor in headings
