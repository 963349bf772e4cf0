"""Untrusted text made safe to print: one line, no control sequences.

Symbol names, package names and file names come from inputs anyone can craft; printed
raw, an ``ESC]0;…`` sequence retitles the terminal and a newline forges a second line of
output.  Every message and table cell goes through :func:`escape`.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, the Unicode line/paragraph separators and bidi overrides, and
# lone surrogates (the bytes of a non-UTF-8 file name, which print would write back raw)
_OTHERS = ("\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
           "\ud800-\udfff")
_UNSAFE = re.compile(f"[\t\n{_OTHERS}]")
_UNSAFE_IN_REPORT = re.compile(f"[{_OTHERS}]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(
        char, f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape(text: str) -> str:
    """``text`` with every control character spelled as a backslash escape."""
    return _UNSAFE.sub(_escaped, text)


def escape_lines(text: str) -> str:
    """Like :func:`escape`, but keeps newlines and TABs: for multi-line reports."""
    return _UNSAFE_IN_REPORT.sub(_escaped, text)
