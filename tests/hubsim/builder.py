"""Run a kojid task handler against the simulated hub, the way kojid does.

kojid's TaskManager reads the request with ``getTaskInfo(id, request=True)``, builds
the handler ``cls(id, method, params, session, options)``, opens the task
(``host.openTask``), runs ``handler.run()`` and reports with ``host.closeTask``
(XML-RPC encoded result) or ``host.failTask`` (encoded Fault) -- koji/daemon.py
``TaskManager.takeTask``/``runTask``.  We do the same in-process, without forking.
"""

from __future__ import annotations

import optparse
import os
import sys
import traceback
from typing import Any, Optional

import koji
import koji.tasks
import koji.xmlrpcplus


def kojid_options(workdir: str, *, topdir: Optional[str] = None, topurl: Optional[str] = None,
                  server: Optional[str] = None, **extra: Any) -> optparse.Values:
    """The ``options`` object kojid hands to handlers (attributes handlers read)."""
    values = {'workdir': workdir, 'topdir': topdir, 'topurl': topurl, 'server': server,
              'mockdir': os.path.join(workdir, 'mock'), 'literal_task_arches': '',
              'pluginpath': '', 'plugin': [], 'maxjobs': 10, 'sleeptime': 15,
              'offline_retry': False, 'retry_interval': 1, 'max_retries': 1}
    values.update(extra)
    return optparse.Values(values)


def run_task_handler(handler_cls: type, task_id: int, session: koji.ClientSession,
                     options: optparse.Values, *, open_task: bool = True) -> Any:
    """Run task ``task_id`` with ``handler_cls`` as builder ``session`` (a host).

    Returns the handler's result.  If it raises, the task is failed with the same
    Fault kojid would send and the exception is re-raised."""
    info = session.getTaskInfo(task_id, request=True, strict=True)
    handler = handler_cls(task_id, info['method'], info['request'], session, options)
    if (open_task and info['state'] != koji.TASK_STATES['OPEN']
            and session.host.openTask(task_id) is None):
        raise koji.GenericError('hubsim: host could not open task %s' % task_id)
    try:
        result = handler.run()
        # encoded inside the try, as kojid does: an unmarshallable result fails the task
        response = koji.xmlrpcplus.dumps((result,), methodresponse=1, allow_none=1)
    except koji.xmlrpcplus.Fault as fault:
        session.host.failTask(task_id, koji.xmlrpcplus.dumps(fault))
        raise
    except Exception:
        e_class, e = sys.exc_info()[:2]
        code = getattr(e_class, 'faultCode', 1)
        tb = str(e) if issubclass(e_class, koji.GenericError) else traceback.format_exc()
        session.host.failTask(task_id, koji.xmlrpcplus.dumps(koji.xmlrpcplus.Fault(code, tb)))
        raise
    session.host.closeTask(task_id, response)
    return result
