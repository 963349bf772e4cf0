"""koji CLI plugin: ``koji kabi-check``, ``koji kabi-delta``, ``koji kabi-rebuild``.

The read-only commands use only standard hub calls (batched with multicall) and Koji's
files URL (for the kernel's own stablelist RPM), so they work against any Koji hub, with
or without the koji-kabi hub plugin; they run the same checks as the hub's ``kabi.*``
calls and the ``kabiCheck`` task, and ``--json`` prints the same document.

Exit status: 0 compatible (kabi-rebuild: the check ran and found every kmod
compatible), 1 incompatible kmods or a breaking delta, 2 an error (usage, an unknown
build, an unreachable hub, a failed task), 130 interrupted.
"""

import os
import shutil
import sys
import tempfile
import time
from optparse import OptionParser

import koji
from koji.plugin import export_cli
from koji.util import eventFromOpts
from koji_cli.lib import (
    TaskWatcher,
    _running_in_bg,
    activate_session,
    download_file,
    ensure_connection,
    get_usage_str,
)

from koji_kabi.analysis.delta import delta_kernels
from koji_kabi.errors import KabiError, fault_message
from koji_kabi.koji.checks import (
    check_kernel_build,
    check_kmod_build,
    get_build,
    kernel_of,
    kmod_builds_in,
    kmods_of,
    previous_kernel,
    reference_kernel,
    stablelists_of,
    watch_of,
)
from koji_kabi.koji.rules import Rules, load_rules, parse_rules
from koji_kabi.koji.views import RpmsOnce, SessionView
from koji_kabi.report.html import check_html, write_html
from koji_kabi.report.jsondoc import document, dumps
from koji_kabi.report.terminal import escape, escape_lines
from koji_kabi.report.text import (
    delta_text,
    rebuild_outcomes_text,
    verdict_text,
    verdicts_text,
)

RULES_PATHS = ("~/.config/koji-kabi/rules.yaml", "/etc/koji-kabi/rules.yaml")
EXIT_OK, EXIT_INCOMPATIBLE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _fail(message):
    sys.stderr.write("koji: %s\n" % escape(message))
    sys.exit(EXIT_ERROR)


def _connect(session, goptions):
    """ensure_connection() as Koji's read-only commands do (it honours --force-auth), but
    an unreachable hub exits 2: exit 1 means incompatible."""
    try:
        ensure_connection(session, goptions)
    except SystemExit as exc:
        sys.exit(EXIT_ERROR if exc.code else EXIT_OK)


def _ref(build):
    """A build argument: an NVR, or a build ID as Koji's own commands accept it."""
    return int(build) if build.isdigit() else build


def _rules(session, path):
    """The rules: --rules or $KOJI_KABI_RULES, else the hub's own (kabi.rules), else a
    file in a default place (for hubs without the koji-kabi hub plugin), else none."""
    path = path or os.environ.get("KOJI_KABI_RULES")
    if path:
        return load_rules(path)
    try:
        answer = session.kabi.rules()
    except koji.GenericError:  # no (or a disabled) koji-kabi hub plugin: ask no more
        answer = None
    if answer:
        return parse_rules(answer["rules"], "the hub's rules (%s)" % answer["source"])
    path = next((p for p in map(os.path.expanduser, RULES_PATHS) if os.path.exists(p)), None)
    return load_rules(path) if path else Rules()


def _common(parser, goptions):
    parser.add_option("--arch", action="append", default=[], help="only this arch (repeatable)")
    parser.add_option("--json", action="store_true",
                      help="print the result as JSON (the same document as the hub's "
                           "kabi.* calls)")
    parser.add_option("--quiet", action="store_true", default=goptions.quiet,
                      help="do not print headers, titles or progress")


def _history(parser):
    parser.add_option("--event", type="int", metavar="EVENT#",
                      help="check the tags as they were at this event")
    parser.add_option("--ts", type="int", metavar="TIMESTAMP",
                      help="check the tags as they were at this time (seconds since 1970)")


def _progress(opts, message):
    """What a long check is doing, on a terminal only (stdout stays the result)."""
    if not opts.quiet and sys.stderr.isatty():
        sys.stderr.write("%s\n" % escape(message))
        sys.stderr.flush()


def _event(session, opts):
    """The event of --event / --ts, as koji's own list commands read them (or None)."""
    try:
        info = eventFromOpts(session, opts)
    except koji.GenericError:
        raise KabiError("--event %s" % opts.event if opts.event else "--ts %s" % opts.ts,
                        "no such event (koji list-history shows them)") from None
    if info is not None and not opts.quiet:
        sys.stderr.write("Querying at event %(id)i (%(ts)s)\n"
                         % dict(info, ts=time.asctime(time.localtime(info["ts"]))))
    return info["id"] if info else None


class _Downloads:
    """The kernel's stablelist RPM fetched from Koji's files URL into a directory that
    lives as long as the command (``koji download-build`` does the same)."""

    def __init__(self, topurl):
        self.topurl = topurl
        self.dir = None

    def __call__(self, build, rpm):
        if not self.topurl:
            raise KabiError(build["nvr"], "no topurl in the koji configuration: cannot read "
                            "its %s RPM" % rpm["name"])
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="koji-kabi-")
        pathinfo = koji.PathInfo(topdir=self.topurl)
        url = pathinfo.build(build) + "/" + pathinfo.rpm(rpm)
        path = os.path.join(self.dir, os.path.basename(pathinfo.rpm(rpm)))
        try:
            download_file(url, path, quiet=True, noprogress=True)
        except Exception as exc:  # requests' and OS errors alike: one line
            raise KabiError(url, "cannot download: %s" % fault_message(exc)) from None
        return path

    def close(self):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _kernel_tag_for(session, rules, build):
    """The watched kernel tag that pairs with a tag the kmod build is in."""
    for tag in session.listTags(build=build["id"]):
        watch = rules.watch_for_kmod_tag(tag["name"])
        if watch is not None:
            return watch.kernel_tag
    return None


def _check_kmod(session, view, rules, build, opts, fetch):
    if opts.against or opts.kmod_tag:
        raise KabiError(build["nvr"], "a kmod build: --against and --kmod-tag are for "
                        "kernel builds")
    if opts.kernel:
        kbuild = get_build(view, _ref(opts.kernel))
    else:
        tag = opts.tag or _kernel_tag_for(session, rules, build)
        if not tag and not kmods_of(view, [build], opts.arch or None):
            raise KabiError(build["nvr"], "not a kmod build: no package with kernel(symbol) "
                            "= CRC requires")
        if not tag:
            raise KabiError(build["nvr"], "which kernel? give --kernel NVR or --tag TAG "
                            "(or a rules file pairing one of its tags with a kernel tag)")
        kbuild = reference_kernel(view, rules.kernel_packages, tag, rules,
                                  _event(session, opts))
    _progress(opts, "checking %s against %s" % (build["nvr"], kbuild["nvr"]))
    result = check_kmod_build(view, build, kbuild, opts.arch or None,
                              stablelists_of(view, kbuild, fetch))
    found = [v.verdict for v in result.verdicts]
    print(dumps(document("kmod-check", result)) if opts.json else
          verdicts_text(found, opts.quiet))
    return EXIT_OK if result.compatible else EXIT_INCOMPATIBLE


def _rebuilds(session, build):
    """The rebuilds koji-kabi made for this kernel (none if the hub has no plugin)."""
    try:
        return session.kabi.rebuilds(kernel=build["id"])
    except koji.GenericError:  # no hub plugin, or no claims table: nothing to show
        return []


def _check_kernel(session, view, rules, build, opts, fetch, weburl=None):
    if opts.kernel:
        raise KabiError(build["nvr"], "a kernel build: --kernel is for kmod builds "
                        "(compare kernels with --against)")
    watch = watch_of(view, rules, build, opts.tag)
    kernel_tag = opts.tag or (watch.kernel_tag if watch else None)
    if opts.against:
        previous = get_build(view, _ref(opts.against))
    elif kernel_tag:
        previous = previous_kernel(view, build, kernel_tag)
    else:
        previous = None
    kmod_tags = opts.kmod_tag or (list(watch.kmod_tags) if watch else [])
    builds = kmod_builds_in(view, kmod_tags, _event(session, opts))
    _progress(opts, "checking %d kmod builds in %s against %s" % (
        len(builds), ", ".join(kmod_tags) or "no tag", build["nvr"]))
    result = check_kernel_build(view, build, previous, builds, opts.arch or None,
                                stablelists_of(view, build, fetch), kmod_tags)
    rebuilds = _rebuilds(session, build)
    if opts.json:
        print(dumps(document("kernel-check", result, rebuilds=rebuilds)))
    else:
        print(_kernel_text(result, rebuilds, opts.quiet, weburl))
    if opts.html:
        write_html(opts.html, check_html([v.verdict for v in result.verdicts], build["nvr"],
                                         rebuilds))
    return EXIT_OK if result.compatible else EXIT_INCOMPATIBLE


def _kernel_text(result, rebuilds, quiet, weburl):
    """The delta's counts, the kmods the kernel breaks, and the rebuilds made for it."""
    found = [v.verdict for v in result.verdicts]
    bad = [v for v in found if not v.compatible]
    if quiet:
        parts = [verdict_text(v, quiet=True) for v in bad]
        if rebuilds:
            parts.append(rebuild_outcomes_text(result.kernel, rebuilds, weburl, quiet=True))
        return escape_lines("\n".join(parts))
    parts = [delta_text(result.delta, summary=True) if result.delta else
             "%s: no previous kernel to compare with (use --against)" % result.kernel]
    for problem in result.unreadable:
        parts.append("kmod not checked: %s" % problem)
    if not result.kmod_tags:
        parts.append("no kmod tags (use --kmod-tag or a rules file)")
    elif bad:
        parts.append("kmods in %s broken by %s:\n%s\n\n%d compatible, %d incompatible"
                     % (", ".join(result.kmod_tags), result.kernel,
                        "\n".join(verdict_text(v) for v in bad),
                        len(found) - len(bad), len(bad)))
    else:
        parts.append("all %d kmod packages in %s are compatible with %s"
                     % (len(found), ", ".join(result.kmod_tags), result.kernel))
    if rebuilds:
        parts.append(rebuild_outcomes_text(result.kernel, rebuilds, weburl))
    return escape_lines("\n\n".join(parts))


@export_cli
def anon_handle_kabi_check(goptions, session, args):
    "[info] Check a kmod build's kABI against a kernel, or what a kernel build breaks"
    usage = "usage: %prog kabi-check [options] <build>"
    parser = OptionParser(usage=get_usage_str(usage))
    parser.add_option("--kernel", metavar="NVR", help="kmod: check against this kernel build")
    parser.add_option("--tag", help="kmod: use the latest kernel in this tag; "
                                    "kernel: the watched kernel tag")
    parser.add_option("--against", metavar="NVR", help="kernel: compare with this kernel build")
    parser.add_option("--kmod-tag", action="append", default=[], metavar="TAG",
                      help="kernel: check the latest kmods of this tag (repeatable)")
    parser.add_option("--rules", metavar="FILE",
                      help="koji-kabi rules file (default: $KOJI_KABI_RULES, the hub's "
                           "rules, " + ", ".join(RULES_PATHS) + ")")
    parser.add_option("--html", metavar="FILE",
                      help="kernel: also write the verdicts and the rebuilds' outcomes "
                           "as one HTML file")
    _common(parser, goptions)
    _history(parser)
    (opts, args) = parser.parse_args(args)
    if len(args) != 1:
        parser.error("give exactly one build")
    fetch = _Downloads(getattr(goptions, "topurl", None))
    try:
        _connect(session, goptions)
        rules = _rules(session, opts.rules)
        view = RpmsOnce(SessionView(session))  # a one-shot read: each RPM list once
        build = get_build(view, _ref(args[0]))
        if build["name"] in rules.kernel_packages:
            return _check_kernel(session, view, rules, build, opts, fetch,
                                 getattr(goptions, "weburl", None))
        return _check_kmod(session, view, rules, build, opts, fetch)
    except (KabiError, koji.GenericError) as exc:
        _fail(fault_message(exc))
    finally:
        fetch.close()


@export_cli
def anon_handle_kabi_delta(goptions, session, args):
    "[info] Show the kABI symbol delta between two kernel builds"
    usage = "usage: %prog kabi-delta [options] <old-kernel> <new-kernel>"
    parser = OptionParser(usage=get_usage_str(usage))
    parser.add_option("--summary", action="store_true", help="counts only")
    _common(parser, goptions)
    (opts, args) = parser.parse_args(args)
    if len(args) != 2:
        parser.error("give an old and a new kernel build")
    fetch = _Downloads(getattr(goptions, "topurl", None))
    try:
        _connect(session, goptions)
        view = RpmsOnce(SessionView(session))  # a one-shot read: each RPM list once
        old_b, new_b = get_build(view, _ref(args[0])), get_build(view, _ref(args[1]))
        _progress(opts, "reading the kernel symbols of %s and %s" % (old_b["nvr"], new_b["nvr"]))
        new = kernel_of(view, new_b, opts.arch or None)
        old = kernel_of(view, old_b, {k.arch for k in new.tables})
        kd = delta_kernels(old, new, stablelists_of(view, new_b, fetch))
    except (KabiError, koji.GenericError) as exc:
        _fail(fault_message(exc))
    finally:
        fetch.close()
    print(dumps(document("delta", kd)) if opts.json else
          delta_text(kd, opts.summary, opts.quiet))
    return EXIT_INCOMPATIBLE if kd.breaking else EXIT_OK


@export_cli
def handle_kabi_rebuild(goptions, session, args):
    "[build] Check a kernel build's kABI in Koji and rebuild the kmods it breaks"
    usage = "usage: %prog kabi-rebuild [options] <kernel-build>"
    parser = OptionParser(usage=get_usage_str(usage))
    parser.add_option("--dry-run", action="store_true",
                      help="report what would be rebuilt, submit nothing")
    parser.add_option("--against", metavar="NVR", help="compare with this kernel build")
    parser.add_option("--tag", help="the watched kernel tag to use")
    parser.add_option("--wait", action="store_true", default=None,
                      help="wait for the check, even when not on a terminal")
    parser.add_option("--nowait", action="store_false", dest="wait",
                      help="don't wait for the check to finish")
    parser.add_option("--quiet", action="store_true", default=goptions.quiet,
                      help="do not print the task information")
    (opts, args) = parser.parse_args(args)
    if len(args) != 1:
        parser.error("give exactly one kernel build")
    activate_session(session, goptions)
    try:
        task_id = session.kabi.rebuild(_ref(args[0]), dry_run=bool(opts.dry_run),
                                       against=opts.against and _ref(opts.against),
                                       tag=opts.tag)
    except koji.GenericError as exc:
        if "Invalid method" in str(exc):
            _fail("this hub has no koji-kabi hub plugin (kabi.rebuild is unknown)")
        _fail(fault_message(exc))
    if not opts.quiet:
        print("Created task: %d" % task_id)
        print("Task info: %s/taskinfo?taskID=%s" % (goptions.weburl, task_id))
    if opts.wait or (opts.wait is None and not _running_in_bg()):
        return _watch_check(session, task_id, goptions, opts.quiet)
    return EXIT_OK


def _watch_check(session, task_id, goptions, quiet):
    """Wait for the kabiCheck task only, then print its report.

    Koji's ``watch_tasks`` also waits for every subtask, and the rebuilds are ``build``
    subtasks that may take hours: the check is done when its own task is.
    """
    watcher = TaskWatcher(task_id, session, quiet=quiet, topurl=goptions.topurl)
    try:
        while True:
            watcher.update()
            if watcher.is_done():
                break
            time.sleep(goptions.poll_interval)
    except KeyboardInterrupt:
        print("kabiCheck task %d still running" % task_id)
        return EXIT_INTERRUPTED
    if not watcher.is_success():
        sys.stderr.write("%s\n" % escape(watcher.get_failure().strip() or
                                          "kabiCheck task %d did not succeed" % task_id))
        return EXIT_ERROR
    summary = session.getTaskResult(task_id)
    if not quiet:
        try:
            print(escape_lines(session.downloadTaskOutput(task_id, "kabi-report.txt").decode(
                "utf-8", "replace").rstrip("\n")))
        except koji.GenericError:
            print(escape_lines(str(summary)))
    return EXIT_INCOMPATIBLE if summary.get("incompatible") else EXIT_OK
