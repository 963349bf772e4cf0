"""kojid plugin: the ``kabiCheck`` task (and its per-arch ``kabiCheckArch`` subtasks), and
``kabiJudge``, which judges a finished rebuild against its kernel.

Koji glue only: read the plugin config once, run :func:`koji_kabi.koji.pipeline.run_check`
with one :class:`~koji_kabi.koji.views.SessionView` over the task's host session (as its
Koji view and its task host), upload the report, return a short summary for
``koji taskinfo``.  Enable with ``plugins = kabi_builder`` in ``kojid.conf``; settings in
``/etc/kojid/plugins/kabi.conf`` (``KOJI_KABI_BUILDER_CONFIG`` overrides the path).
"""

import contextlib
import json
import logging
import os

import koji
from koji.daemon import incremental_upload
from koji.tasks import BaseTaskHandler

from koji_kabi.errors import KabiError, fault_message
from koji_kabi.koji.cache import DirCache
from koji_kabi.koji.checks import get_build, judge_build, judge_files
from koji_kabi.koji.pipeline import Context, check_arch_job, run_check
from koji_kabi.koji.rules import load_rules, parse_rules
from koji_kabi.koji.settings import BuilderSettings, CheckOptions, load_settings
from koji_kabi.koji.views import SessionView
from koji_kabi.report.html import kabicheck_html
from koji_kabi.report.terminal import escape
from koji_kabi.report.text import report_text

CONFIG_FILE = os.environ.get("KOJI_KABI_BUILDER_CONFIG", "/etc/kojid/plugins/kabi.conf")
logger = logging.getLogger("koji.plugin.kabi")


class _TaskLog(logging.Handler):
    """The core's log lines, to kojid.log (through ``koji.plugin.kabi``) and to the task's
    ``kabi.log``, uploaded line by line as the check goes (as runroot uploads its logs), so
    ``koji watch-logs <task>`` shows the phases.  A log problem never fails the check."""

    def __init__(self, task):
        super().__init__(logging.INFO)
        self.task = task
        path = os.path.join(task.workdir, "kabi.log")
        os.makedirs(task.workdir, exist_ok=True)
        self.out = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.unsent = open(path, "rb")  # noqa: SIM115
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s"))

    def emit(self, record):
        try:
            logger.handle(record)
            self.out.write(escape(self.format(record)) + "\n")
            self.out.flush()
            incremental_upload(self.task.session, "kabi.log", self.unsent,
                               self.task.getUploadDir(), logger=logger)
        except Exception:  # the log is a view of the check, not the check
            logger.warning("kabi: task log not updated", exc_info=True)

    def close(self):
        self.out.close()
        self.unsent.close()
        super().close()


@contextlib.contextmanager
def _task_logging(task):
    """The core's log lines go to the task's log while the check runs."""
    core = logging.getLogger("koji_kabi")
    core.setLevel(logging.INFO)
    core.propagate = False  # kojid.log gets each line once, through koji.plugin.kabi
    handler = _TaskLog(task)
    core.addHandler(handler)
    try:
        yield
    finally:
        core.removeHandler(handler)
        handler.close()


def _config(session):
    """Settings (this builder's file) and rules (the hub's, unless the file names others),
    read at the start of each task: kojid runs every task in a process of its own, so a
    change on the hub or here needs no restart.  A bad file is one clear task failure."""
    try:
        settings = load_settings(BuilderSettings, CONFIG_FILE)
        if settings.rules:
            return settings, load_rules(settings.rules)
    except KabiError as exc:
        raise koji.GenericError("kabi builder plugin: %s" % exc) from None
    try:
        answer = session.kabi.rules()
        return settings, parse_rules(answer["rules"], "the hub's rules (%s)" % answer["source"])
    except (KabiError, koji.GenericError) as exc:
        raise koji.GenericError("kabi builder plugin: the hub's rules: %s"
                                % fault_message(exc)) from None


def _cache(settings):
    try:
        return DirCache(settings.cache_dir, settings.cache_max_mb * 1024 * 1024)
    except OSError:
        return None  # no cache is slower, never wrong


def _view(handler, settings, options):
    """A SessionView over the task's host session, with this builder's cache and topurl and
    the batch size of the check's options (``settings.check``: this builder's defaults)."""
    return SessionView(handler.session, _cache(settings), options.batch,
                       _topurl(handler, settings))


def _topurl(handler, settings):
    """Koji's files URL when headers are to be read over HTTP (kojid.conf ``topurl``)."""
    if settings.deps_source != "topurl":
        return None
    return getattr(handler.options, "topurl", None) or None


def _fetch(handler, build, rpm):
    relpath = os.path.join(koji.pathinfo.build(build), koji.pathinfo.rpm(rpm))
    relpath = os.path.relpath(relpath, koji.pathinfo.topdir)
    return handler.localPath(relpath)


class KabiCheckTask(BaseTaskHandler):
    """Delta of a new kernel, verdicts of the kmods in its tags, rebuilds of the broken."""

    Methods = ["kabiCheck"]
    _taskWeight = 0.5

    def handler(self, build_id, opts=None):
        settings, rules = _config(self.session)
        with _task_logging(self):
            try:
                # this builder's settings, then the task's options (the hub's opts dict)
                options = CheckOptions.from_settings(settings, opts)
                # one view for the task: it reads Koji and acts as the task's host
                view = _view(self, settings, options)
                ctx = Context(view, view, rules, self.id, fanout=self._fanout,
                              fetch=self._fetch, stage_srpm=self._stage_srpm)
                report = run_check(ctx, build_id, options)
            except KabiError as exc:
                logger.error("kabi: %s", exc)
                raise koji.GenericError(str(exc)) from None
        for name, text in (("kabi-report.json", json.dumps(report, sort_keys=True)),
                           ("kabi-report.txt", report_text(report) + "\n"),
                           ("kabi-report.html", kabicheck_html(report))):
            path = os.path.join(self.workdir, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            self.uploadFile(path)
        if report["error"]:  # the partial report is uploaded; the task fails
            raise koji.GenericError(report["error"])
        summary = dict(report["summary"], kernel=report["kernel"],
                       previous=report["previous"], dry_run=report["dry_run"],
                       seconds=report["seconds"])
        return summary

    def _fetch(self, build, rpm):
        """A build's RPM as a local file (from topdir, or downloaded from topurl)."""
        return _fetch(self, build, rpm)

    def _stage_srpm(self, build_id):
        """Upload a kmod build's SRPM into this task's output (it shows in kojiweb): a
        rebuild from it takes the path under work/, as ``koji build`` does for an SRPM."""
        build = self.session.getBuild(build_id, strict=True)
        srpms = [r for r in self.session.listBuildRPMs(build_id) if r["arch"] == "src"]
        if not srpms:
            raise KabiError(build["nvr"], "the build has no SRPM to rebuild from")
        path = _fetch(self, build, srpms[0])
        self.uploadFile(path)
        return "%s/%s" % (self.getUploadDir(), os.path.basename(path))

    def _fanout(self, jobs):
        """Run each arch as a subtask on the builders of this channel; results in order."""
        ids = [self.subtask("kabiCheckArch", [job], label="arch-%s" % job["arch"])
               for job in jobs]
        results = self.wait(ids, all=True, failany=True)
        return [results[i] for i in ids]


class KabiCheckArchTask(BaseTaskHandler):
    """One arch of a large ``kabiCheck``."""

    Methods = ["kabiCheckArch"]
    _taskWeight = 0.5

    def handler(self, job):
        settings, _rules = _config(self.session)
        try:
            return check_arch_job(_view(self, settings, settings.check), job,
                                  lambda build, rpm: _fetch(self, build, rpm))
        except KabiError as exc:
            raise koji.GenericError(str(exc)) from None


class KabiJudgeTask(BaseTaskHandler):
    """A rebuild ended: do its RPMs match the kernel it was made for?  The hub records
    the answer (fixed / still broken) and publishes it."""

    Methods = ["kabiJudge"]
    _taskWeight = 0.2

    def handler(self, rebuild_id):
        settings = _config(self.session)[0]
        found = self.session.kabi.rebuilds(rebuild_id=rebuild_id)
        if not found:
            raise koji.GenericError("no koji-kabi rebuild %s" % rebuild_id)
        row = found[0]
        view = _view(self, settings, settings.check)
        try:
            kernel = get_build(view, row["kernel"])
            if row["result_build_id"]:
                build = get_build(view, row["result_build_id"])
                outcome, detail = judge_build(view, build, kernel)
                made = build["nvr"]
            else:  # a scratch build: its RPMs are the task's output
                outcome, detail = judge_files(view, self._scratch_rpms(row["task_id"]),
                                              kernel, "build task %s" % row["task_id"])
                made = None
        except KabiError as exc:
            raise koji.GenericError(str(exc)) from None
        self.session.kabi.judgeRebuild(self.id, outcome, detail, made)
        logger.info("kabi: rebuild task %s of %s for %s: %s (%s)", row["task_id"],
                    row["nvr"], row["kernel"], outcome, escape(detail))
        return {"rebuild_id": rebuild_id, "task_id": row["task_id"], "nvr": row["nvr"],
                "kernel": row["kernel"], "outcome": outcome, "detail": detail, "build": made}

    def _scratch_rpms(self, task_id):
        tasks = [task_id] + [t["id"] for kids in self.session.getTaskDescendents(
            task_id).values() for t in kids]
        paths = []
        for tid in dict.fromkeys(tasks):
            for name in self.session.listTaskOutput(tid):
                if (name.endswith(".rpm") and not name.endswith(".src.rpm")
                        and "-debuginfo-" not in name and "-debugsource-" not in name):
                    paths.append(self.localPath("work/%s/%s" % (koji.pathinfo.taskrelpath(tid),
                                                                name)))
        return paths
