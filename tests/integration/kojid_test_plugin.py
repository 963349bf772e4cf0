"""Test-only kojid plugin of the real-Koji tier: task builds without mock (never shipped).

Koji's ``build`` task ends with two host calls, ``host.initBuild`` (the build appears,
BUILDING, owned by the task) and ``host.completeBuild`` (its RPMs are imported and it
becomes COMPLETE in one transaction).  Debian has no mock, so this handler makes builds
through exactly those two calls from RPMs the test uploaded to the hub's work area: the
hub then holds a real task build (``build.task_id`` set, the task's request holding the
SCM URL), and every hub callback fires as for a build from mock.

Request: ``[source, target, opts]`` like ``build``; ``opts``: ``srpm`` and ``rpms``
(paths relative to the hub's work directory), ``draft`` (a draft build), ``record_source``
(false: leave ``build.source`` empty, as builds of older Kojis have it).
"""

import os
import sys

import koji
from koji.tasks import BaseTaskHandler


class KabiItBuildTask(BaseTaskHandler):
    Methods = ["kabiItBuild"]
    _taskWeight = 0.1

    def handler(self, source, target, opts):
        srpm = os.path.join(self.options.topdir, "work", opts["srpm"])
        data = koji.get_header_fields(srpm, ["name", "version", "release", "epoch"])
        data["task_id"] = self.id
        if opts.get("record_source", True):
            data["source"] = source
        if opts.get("draft"):
            data["draft"] = True
        build_id = self.session.host.initBuild(data)
        self.session.host.completeBuild(self.id, build_id, opts["srpm"], opts["rpms"], {})
        return build_id


class KabiItWhereTask(BaseTaskHandler):
    """Where kojid loaded koji-kabi from (the task's result)."""

    Methods = ["kabiItWhere"]
    _taskWeight = 0.1

    def handler(self):
        names = ("_koji_plugin__kabi_builder", "koji_kabi")
        return {n: getattr(sys.modules.get(n), "__file__", None) for n in names}
