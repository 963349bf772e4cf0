"""Test-only hub plugin of the real-Koji tier: holds a call at a chosen moment (never shipped).

Faults need a window: a test writes ``<topdir>/work/kabi-it-holds/hold-<when>-<method>`` (``when``
is ``preCommit``, inside the call's transaction, or ``postCommit``, after it committed and
before the answer is sent) and the next such call of that hub method writes its process id
to ``…/held-<when>-<method>``, then waits until the test removes the hold file (at most 60
s).  Meanwhile the test kills kojid, or the hub process serving the call, or makes a
second call contend for the same rows.
"""

import os
import sys
import time

import koji
from koji.context import context
from koji.plugin import callback, export_in


def _hold(when):
    method = getattr(context, "method", None)
    if not method:
        return
    base = os.path.join(koji.pathinfo.work(), "kabi-it-holds")
    hold = os.path.join(base, "hold-%s-%s" % (when, method))
    if not os.path.exists(hold):
        return
    with open(os.path.join(base, "held-%s-%s" % (when, method)), "w") as f:
        f.write("%d\n" % os.getpid())
    deadline = time.monotonic() + 60
    while os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.1)


@callback("preCommit")
def kabi_it_hold_before_commit(cbtype, *args, **kws):
    _hold("preCommit")


@callback("postCommit")
def kabi_it_hold_after_commit(cbtype, *args, **kws):
    _hold("postCommit")


@export_in("kabi_it")
def loadedFrom():
    """Where this hub process loaded koji-kabi (and protonmsg) from."""
    names = ("_koji_plugin__kabi_hub", "_koji_plugin__protonmsg", "koji_kabi")
    return {n: getattr(sys.modules.get(n), "__file__", None) for n in names}
