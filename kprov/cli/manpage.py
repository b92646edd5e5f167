"""Manual pages (kprov(1), kprov-sync(1), ...), generated from the same help as `--help` and
docs/reference.md, so the three can never disagree.

`python3 scripts/update_reference.py` writes them to `man/`; the wheel installs them under
`share/man/man1` (pipx links them into `~/.local/share/man`, so `man kprov` works after a
pipx install) and a test fails when they are stale. roff is written by hand: it is a small,
stable format, and a converter would be a dependency for six macros.
"""

from __future__ import annotations

import re
from typing import Any

import typer

SECTION = "1"
DOCS = (
    "the guide, the manifest reference, operations and troubleshooting: the docs/ folder of "
    "kprov's source (README.md maps it)"
)


def _escape(text: str) -> str:
    """Text as roff shows it literally: backslashes and hyphens escaped, and a line that
    would start with a control character ('.' or "'") guarded."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        ("\\&" + line) if line[:1] in (".", "'") else line for line in text.split("\n")
    )


def _paragraphs(help_text: str) -> list[tuple[bool, str]]:
    """(preformatted, text) blocks of a click help text: a block that starts with ``\\b`` keeps
    its lines as written (examples), the others are flowing text."""
    blocks: list[tuple[bool, str]] = []
    for block in re.split(r"\n\s*\n", help_text.strip()):
        lines = block.split("\n")
        if lines[0].strip() == "\b":
            blocks.append((True, "\n".join(line.rstrip() for line in lines[1:])))
        else:
            blocks.append((False, " ".join(line.strip() for line in lines)))
    return blocks


def _summary(blocks: list[tuple[bool, str]]) -> str:
    """The page's one-line description: the help's first sentence (or clause before a colon)."""
    if not blocks or blocks[0][0]:
        return ""
    first = blocks[0][1]
    cut = re.search(r"[.:](\s|$)", first)
    return first[: cut.start()] if cut else first


def _option_lines(command: Any, ctx: Any) -> list[str]:
    """``.SS`` per help panel, ``.TP`` per option, in the order `--help` shows them."""
    from kprov.cli.help import grouped_help

    lines: list[str] = []
    for title, records in grouped_help(command, ctx):
        lines.append(f".SS {_escape(title)}")
        for term, description in records:
            lines += [".TP", f"\\fB{_escape(term)}\\fR", _escape(description)]
    return lines


def _page(path: tuple[str, ...], command: Any, ctx: Any, subcommands: list[tuple[str, str]]) -> str:
    from kprov import __version__

    name = "-".join(("kprov", *path))
    help_text = command.help or ""
    blocks = _paragraphs(help_text)
    summary = _summary(blocks)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [
        f'.TH "{name.upper()}" "{SECTION}" "" "kprov {__version__}" "kprov manual"',
        ".SH NAME",
        f"{_escape(name)} \\- {_escape(summary)}",
        ".SH SYNOPSIS",
        f"\\fB{_escape(' '.join(('kprov', *path)))}\\fR {_escape(usage)}",
        ".SH DESCRIPTION",
    ]
    examples: list[str] = []
    for preformatted, text in blocks:
        if preformatted and text.lstrip().startswith("Example"):
            examples.append(text.split("\n", 1)[1] if "\n" in text else "")
        elif preformatted:
            lines += [".PP", ".nf", _escape(text), ".fi"]
        else:
            lines += [".PP", _escape(text)]
    if subcommands:
        lines.append(".SH COMMANDS")
        for sub, short in subcommands:
            lines += [".TP", f"\\fB{_escape(sub)}\\fR", _escape(short)]
    options = _option_lines(command, ctx)
    if options:
        lines += [".SH OPTIONS", *options]
    if examples:
        lines += [".SH EXAMPLES", ".nf", *(_escape(e.rstrip()) for e in examples), ".fi"]
    if not path:
        lines += _root_sections()
    # .nh: page names are not hyphenated at a line's end (kprov-holds-ap- prove(1))
    lines += [".SH SEE ALSO", ".nh", _escape("; ".join([*_related(path, subcommands), DOCS]))]
    return "\n".join(lines) + "\n"


def _related(path: tuple[str, ...], subcommands: list[tuple[str, str]]) -> list[str]:
    """The pages a reader goes to next, so `man` alone leads everywhere: the pages above this
    one (kprov(1), then its group's), and one page per command under it."""
    above = [f"{'-'.join(('kprov', *path[:depth]))}({SECTION})" for depth in range(len(path))]
    below = [f"{'-'.join(('kprov', *path, sub))}({SECTION})" for sub, _ in subcommands]
    return [", ".join(above + below)] if above or below else []


def _root_sections() -> list[str]:
    """kprov(1) also says how runs end and what the environment changes."""
    from kprov.errors import MEANINGS

    lines = [".SH EXIT STATUS"]
    for code, words in MEANINGS.items():
        lines += [".TP", f"\\fB{int(code)}\\fR", _escape(words)]
    lines += [
        ".SH ENVIRONMENT",
        _escape(
            "KPROV_PROFILE, KPROV_CONFIG, KPROV_BASE_URL, KPROV_API_KEY, KPROV_API_SECRET_FILE "
            "(or KPROV_API_SECRET), KPROV_STATE_DIR, KPROV_MAPPING, and the others in "
            "docs/configuration.md. `kprov config show` prints every setting with the place it "
            "came from (a variable, the config file, a default)."
        ),
        ".SH FILES",
        _escape(
            "The state directory (`kprov config show` names it) holds mapping.csv (the external "
            "id to account id mapping, the partner's record: back it up), instances.csv, "
            "registrations.csv and ledger.sqlite3 (the history of every run); mapping.csv.idx "
            "and registrations.csv.idx are snapshots of what was loaded, a cache checked "
            "against the journals on every run, which can be deleted at any time."
        ),
    ]
    return lines


def _walk(command: Any, ctx: Any, path: tuple[str, ...], pages: dict[str, str]) -> None:
    subcommands: list[tuple[str, str]] = []
    children: list[tuple[str, Any]] = []
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            subcommands.append((name, sub.get_short_help_str(limit=120)))
            children.append((name, sub))
    pages[f"{'-'.join(('kprov', *path))}.{SECTION}"] = _page(path, command, ctx, subcommands)
    for name, sub in children:
        _walk(sub, typer.Context(sub, info_name=name, parent=ctx), (*path, name), pages)


def man_pages() -> dict[str, str]:
    """File name -> roff text, for kprov and every command and group under it."""
    from kprov.cli.main import app

    root = typer.main.get_command(app)
    pages: dict[str, str] = {}
    _walk(root, typer.Context(root, info_name="kprov"), (), pages)
    return pages
