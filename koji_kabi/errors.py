"""The one exception type users see: a source (file, build, URL) and what is wrong with it."""

from __future__ import annotations


class KabiError(Exception):
    """Bad input or an impossible request, reported as one line: ``<source>: <problem>``.

    Every reader and computation raises this (never a bare parser or rpm error), so the
    command line, the hub and the builder can show it to a person without a traceback.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
