"""Help pages and usage errors as plain text that never cuts a word.

typer's rich help splits the terminal into table columns and ends a word that does not fit with
"…", so a hub id such as ``Salesforce/blip-vqa-capfilt-large`` or a weights file name came out cut
at 80 columns. Here every command's help is click's plain layout (``Usage:``, the help text,
``Options:``, ``Commands:``, the examples) written by ``PlainHelp``, which wraps at spaces only:
never inside a word and never at a hyphen, so ids, paths and options always appear whole.

``plain_tree`` applies this to every command of a click tree (the root group calls it once);
``usage_error_line`` is the one line a usage error becomes.
"""

from __future__ import annotations

import inspect
import re
import textwrap

try:  # typer vendors click (``typer._click``) in recent releases; older ones use click itself
    from typer import _click as click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    import click
    from click import UsageError

__all__ = ["HelpContext", "PlainHelp", "UsageError", "plain_tree", "usage_error_line", "wrap"]

RAW = "\b"  # click's marker: a paragraph whose lines are kept as they are
HANGING = "    "  # a wrapped example line goes on under its own indent plus this
MARKUP = re.compile(r"\[/?(?:bold|dim)\]")  # the rich styles the examples were written with


def _wrap_line(line: str, width: int, indent: str) -> list[str]:
    """One line of an example block: a comment goes on as a comment, a command under a hanging indent."""
    body = line.lstrip(" ")
    lead = indent + " " * (len(line) - len(body))
    comment = body.startswith("#")
    command, sep, note = body.partition("  # ")
    if not comment and sep and len(lead) + len(body) > width:  # a trailing comment too long to fit: above it
        return _wrap_line(lead + "# " + note.strip(), width, "") + _wrap_line(lead + command.rstrip(), width, "")
    return textwrap.wrap(body, width, initial_indent=lead, subsequent_indent=lead + ("# " if comment else HANGING),
                         break_long_words=False, break_on_hyphens=False) or [lead.rstrip()]


def wrap(text: str, width: int, indent: str = "") -> str:
    """``text`` in lines of at most ``width`` characters where the words allow (a longer word stays
    whole on its own line). Paragraphs are separated by blank lines; one that starts with a ``\\b``
    line keeps its lines (each wrapped on its own), the others are re-flowed."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text.expandtabs().strip("\n")):
        lines = paragraph.splitlines()
        if lines and lines[0].strip() == RAW:
            out.append("\n".join(w for line in lines[1:] for w in _wrap_line(line, width, indent)))
        else:
            out.append(textwrap.fill(" ".join(s.strip() for s in lines), width, initial_indent=indent,
                                     subsequent_indent=indent, break_long_words=False, break_on_hyphens=False))
    return "\n\n".join(out)


class PlainHelp(click.HelpFormatter):
    """click's help formatter with ``wrap`` in place of click's wrapping (which cuts words at hyphens)."""

    def write_text(self, text: str) -> None:
        self.write(wrap(text, self.width, " " * self.current_indent) + "\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        first_col = min(max((len(first) for first, _ in rows), default=0), col_max) + col_spacing
        pad = " " * (self.current_indent + first_col)
        text_width = max(self.width - first_col - self.current_indent, 20)
        for first, second in rows:
            self.write(" " * self.current_indent + first)
            if not second:
                self.write("\n")
                continue
            self.write(" " * (first_col - len(first)) if len(first) <= first_col - col_spacing else "\n" + pad)
            lines = wrap(second, text_width).splitlines()
            self.write("\n".join([lines[0]] + [pad + line if line else "" for line in lines[1:]]) + "\n")


class HelpContext(click.Context):
    formatter_class = PlainHelp


def _plain_epilog(epilog: str) -> str:
    """The examples without their rich styles, every paragraph kept line by line."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(MARKUP.sub("", epilog)))
    return "\n\n".join(p if p.startswith(RAW) else f"{RAW}\n{p}" for p in paragraphs if p.strip())


def _first_paragraph(help_text: str) -> str:
    return " ".join(inspect.cleandoc(help_text).partition("\f")[0].split("\n\n")[0].split())


def plain_tree(command) -> None:
    """Make ``command`` and every command under it write plain help with ``PlainHelp``: the command
    lists show each command's whole first paragraph (click would cut it with "..."), and the examples
    keep their lines."""
    command.context_class = HelpContext
    command.rich_markup_mode = None
    if command.help and not command.short_help:
        command.short_help = _first_paragraph(command.help)
    if command.epilog:
        command.epilog = _plain_epilog(command.epilog)
    for sub in getattr(command, "commands", {}).values():
        plain_tree(sub)


def usage_error_line(error: UsageError) -> str:
    """``error: MESSAGE (see COMMAND --help)``: a usage error as one line, like every other bad input."""
    message = re.sub(r"\s*\n\s*", " ", error.format_message().strip()).removesuffix(".")
    where = error.ctx.command_path if error.ctx is not None else "pixart-bench"
    return f"error: {message} (see {where} --help)"
