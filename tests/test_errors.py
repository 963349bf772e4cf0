"""Hub faults become one line: the message, without the traceback a debugging hub adds."""

from __future__ import annotations

import koji
import pytest

from koji_kabi.errors import fault_message

NORMAL = """Traceback (most recent call last):
  File "/usr/share/koji-hub/kojihub/kojixmlrpc.py", line 275, in _dispatch
    ret = koji.util.call_with_argcheck(func, params, opts)
  File "/usr/lib/python3.11/site-packages/koji/__init__.py", line 1271, in parse_NVR
    raise GenericError("invalid format: %s" % nvr)
koji.GenericError: invalid format: nonsense
"""
EXTENDED = NORMAL + """Locals by frame, innermost last
Frame _dispatch in /usr/share/koji-hub/kojihub/kojixmlrpc.py at line 275
                  func = <function get_build at 0x7f>
                   nvr = nonsense
"""


@pytest.mark.parametrize("text,message", [
    ("kmod-foo-1-1: no such build", "kmod-foo-1-1: no such build"),
    (NORMAL, "invalid format: nonsense"),  # KojiDebug = On
    (EXTENDED, "invalid format: nonsense"),  # KojiTraceback = extended
    ("first line\n  second line", "first line second line"),
    ("Traceback (most recent call last):\n  weird", "weird"),
])
def test_fault_message_is_one_line(text: str, message: str) -> None:
    assert fault_message(koji.GenericError(text)) == message
    assert "\n" not in fault_message(koji.GenericError(text))
