"""hubsim: a simulated Koji hub for the test-suite.

* :class:`State` (state.py): in-memory Koji data loaded from real RPM files.
* :class:`HubServer` (server.py): real HTTP XML-RPC hub + ``/kojifiles`` for the real
  ``koji.ClientSession``, kojid's ``BaseTaskHandler`` and the ``koji`` CLI.
* ``kojihub_standin/kojihub``: an importable ``kojihub`` with the real internal
  function signatures, for hub-plugin unit tests (:func:`install_standin`).
* :func:`run_task_handler` (builder.py): run a builder task handler as kojid would.

Hub semantics follow koji-project/koji master at 2083513aab6ed193215efebb21823d905e02f339.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from .builder import kojid_options, run_task_handler
from .hubcore import HUB_COMMIT
from .server import Call, HubServer
from .state import State

STANDIN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'kojihub_standin')

__all__ = ['HUB_COMMIT', 'STANDIN_PATH', 'Call', 'HubServer', 'State', 'install_standin',
           'kojid_options', 'run_task_handler']


def install_standin(state: Any = None) -> Any:
    """Make ``import kojihub`` give the stand-in (sys.path), set its STATE, return it."""
    if STANDIN_PATH not in sys.path:
        sys.path.insert(0, STANDIN_PATH)
    mod = sys.modules.get('kojihub')
    if mod is None or not os.path.abspath(getattr(mod, '__file__', '')).startswith(STANDIN_PATH):
        mod = importlib.import_module('kojihub')
    if state is not None:
        mod.STATE = state
    return mod
