"""The one exception type users see: a source (file, build, URL) and what is wrong with it."""

from __future__ import annotations

from koji_kabi.report.terminal import escape


class KabiError(Exception):
    """Bad input or an impossible request, reported as one line: ``<source>: <problem>``.

    Every reader and computation raises this (never a bare parser or rpm error), so the
    command line, the hub and the builder can show it to a person without a traceback.
    The message is escaped: a file name with a newline or an escape sequence in it stays
    one harmless line.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{escape(source)}: {escape(problem)}")
        self.source = source
        self.problem = problem


_TRACEBACK = "Traceback (most recent call last):"


def fault_message(exc: BaseException) -> str:
    """The message of a hub fault, as one line.

    A hub with ``KojiDebug = On`` puts the whole traceback (and, with ``KojiTraceback =
    extended``, every frame's locals) into the fault string; a person needs its last
    line, the exception's own message.
    """
    text = str(exc).strip()
    if _TRACEBACK not in text:
        return " ".join(text.split()) if "\n" in text else text
    body = text.split("Locals by frame", 1)[0].rstrip().splitlines()
    last = body[-1].strip() if body else text
    name, sep, message = last.partition(": ")
    if sep and name.replace(".", "").replace("_", "").isalnum():
        return message.strip()
    return last
