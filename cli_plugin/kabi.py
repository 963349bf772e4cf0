"""koji CLI plugin: ``koji kabi-check``, ``koji kabi-delta``, ``koji kabi-rebuild``.

The read-only commands use only standard hub calls (batched with multicall), so they work
against any Koji hub, with or without the koji-kabi hub plugin.  Exit status: 0
compatible, 1 incompatible, 2 usage or lookup error.
"""

import os
import sys
import time
from optparse import OptionParser

import koji
from koji.plugin import export_cli
from koji_cli.lib import (
    TaskWatcher,
    _running_in_bg,
    activate_session,
    ensure_connection,
    get_usage_str,
)

from koji_kabi.analysis.delta import delta_kernels
from koji_kabi.analysis.verdict import ksym_providers, verdict
from koji_kabi.errors import KabiError, fault_message
from koji_kabi.koji.checks import (
    get_build,
    kernel_of,
    kmod_builds_in,
    kmods_of,
    previous_kernel,
    reference_kernel,
    watch_of,
)
from koji_kabi.koji.rules import Rules, load_rules, parse_rules
from koji_kabi.koji.views import SessionView
from koji_kabi.readers.inputs import load_stablelists
from koji_kabi.report.html import check_html, write_html
from koji_kabi.report.terminal import escape, escape_lines
from koji_kabi.report.text import (
    delta_text,
    dumps,
    rebuild_outcomes_text,
    verdict_text,
    verdicts_text,
)

RULES_PATHS = ("~/.config/koji-kabi/rules.yaml", "/etc/koji-kabi/rules.yaml")
EXIT_OK, EXIT_INCOMPATIBLE, EXIT_LOOKUP = 0, 1, 2


def _fail(message):
    sys.stderr.write("koji: %s\n" % escape(message))
    sys.exit(EXIT_LOOKUP)


def _connect(session, goptions):
    """ensure_connection() as Koji's read-only commands do (it honours --force-auth), but
    an unreachable hub exits 2: exit 1 means incompatible."""
    try:
        ensure_connection(session, goptions)
    except SystemExit as exc:
        sys.exit(EXIT_LOOKUP if exc.code else EXIT_OK)


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


def _common(parser):
    parser.add_option("--arch", action="append", default=[], help="only this arch (repeatable)")
    parser.add_option("--json", action="store_true", help="print JSON")
    parser.add_option("--stablelist", action="append", default=[], metavar="PATH",
                      help="local kabi_stablelist file, dir or kernel-abi-stablelists RPM")


def _kernel_tag_for(session, rules, build):
    """The watched kernel tag that pairs with a tag the kmod build is in."""
    for tag in session.listTags(build=build["id"]):
        watch = rules.watch_for_kmod_tag(tag["name"])
        if watch is not None:
            return watch.kernel_tag
    return None


def _check_kmod(session, view, rules, build, opts):
    if opts.against or opts.kmod_tag:
        raise KabiError(build["nvr"], "a kmod build: --against and --kmod-tag are for "
                        "kernel builds")
    pairs = kmods_of(view, [build], opts.arch or None)
    if not pairs:
        problem = ("no kmod package (kernel(symbol) = CRC requires) for " + ", ".join(opts.arch)
                   if opts.arch else
                   "not a kmod build: no package with kernel(symbol) = CRC requires")
        raise KabiError(build["nvr"], problem)
    if opts.kernel:
        kbuild = get_build(view, _ref(opts.kernel))
    else:
        tag = opts.tag or _kernel_tag_for(session, rules, build)
        if not tag:
            raise KabiError(build["nvr"], "which kernel? give --kernel NVR or --tag TAG "
                            "(or a rules file pairing one of its tags with a kernel tag)")
        kbuild = reference_kernel(view, rules.kernel_packages, tag, rules)
    kernel = kernel_of(view, kbuild, {m.key.arch for _b, m in pairs})
    lists = load_stablelists(opts.stablelist)
    providers = ksym_providers(m for _b, m in pairs)
    verdicts = [verdict(m, kernel, lists.get(m.key.arch), providers.get(m.key.arch))
                for _b, m in pairs]
    print(dumps(verdicts) if opts.json else verdicts_text(verdicts))
    return EXIT_OK if all(v.compatible for v in verdicts) else EXIT_INCOMPATIBLE


def _rebuilds(session, build):
    """The rebuilds koji-kabi made for this kernel, if the hub has the plugin."""
    try:
        return session.kabi.rebuilds(kernel=build["id"])
    except koji.GenericError:  # no hub plugin, or no claims table: nothing to show
        return None


def _check_kernel(session, view, rules, build, opts, weburl=None):
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
    kernel = kernel_of(view, build, opts.arch or None)
    kmod_tags = opts.kmod_tag or (list(watch.kmod_tags) if watch else [])
    builds = kmod_builds_in(view, kmod_tags)
    pairs = kmods_of(view, builds, {k.arch for k in kernel.tables}) if builds else []
    lists = load_stablelists(opts.stablelist)
    providers = ksym_providers(m for _b, m in pairs)
    verdicts = [verdict(m, kernel, lists.get(m.key.arch), providers.get(m.key.arch))
                for _b, m in pairs]
    kd = None
    if previous is not None:
        old = kernel_of(view, previous, {k.arch for k in kernel.tables})
        kd = delta_kernels(old, kernel, lists)
    rebuilds = _rebuilds(session, build)
    if opts.json:
        out = {"kernel": build["nvr"], "previous": previous and previous["nvr"],
               "kmod_tags": kmod_tags, "delta": kd, "verdicts": verdicts}
        if rebuilds:
            out["rebuilds"] = rebuilds
        print(dumps(out))
    else:
        parts = [delta_text(kd, summary=True) if kd else
                 "%s: no previous kernel to compare with (use --against)" % build["nvr"]]
        bad = [v for v in verdicts if not v.compatible]
        if not kmod_tags:
            parts.append("no kmod tags (use --kmod-tag or a rules file)")
        elif bad:
            parts.append("kmods in %s broken by %s:\n%s\n\n%d compatible, %d incompatible"
                         % (", ".join(kmod_tags), build["nvr"],
                            "\n".join(verdict_text(v) for v in bad),
                            len(verdicts) - len(bad), len(bad)))
        else:
            parts.append("all %d kmod packages in %s are compatible with %s"
                         % (len(verdicts), ", ".join(kmod_tags), build["nvr"]))
        if rebuilds:
            parts.append(rebuild_outcomes_text(build["nvr"], rebuilds, weburl))
        print(escape_lines("\n\n".join(parts)))
    if opts.html:
        write_html(opts.html, check_html(verdicts, build["nvr"], rebuilds or ()))
    return EXIT_OK if all(v.compatible for v in verdicts) else EXIT_INCOMPATIBLE


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
    _common(parser)
    (opts, args) = parser.parse_args(args)
    if len(args) != 1:
        parser.error("give exactly one build")
    try:
        _connect(session, goptions)
        rules = _rules(session, opts.rules)
        view = SessionView(session)
        build = get_build(view, _ref(args[0]))
        if build["name"] in rules.kernel_packages:
            return _check_kernel(session, view, rules, build, opts,
                                 getattr(goptions, "weburl", None))
        return _check_kmod(session, view, rules, build, opts)
    except (KabiError, koji.GenericError) as exc:
        _fail(fault_message(exc))


@export_cli
def anon_handle_kabi_delta(goptions, session, args):
    "[info] Show the kABI symbol delta between two kernel builds"
    usage = "usage: %prog kabi-delta [options] <old-kernel> <new-kernel>"
    parser = OptionParser(usage=get_usage_str(usage))
    parser.add_option("--summary", action="store_true", help="counts only")
    _common(parser)
    (opts, args) = parser.parse_args(args)
    if len(args) != 2:
        parser.error("give an old and a new kernel build")
    try:
        lists = load_stablelists(opts.stablelist)
        _connect(session, goptions)
        view = SessionView(session)
        old_b, new_b = get_build(view, _ref(args[0])), get_build(view, _ref(args[1]))
        new = kernel_of(view, new_b, opts.arch or None)
        old = kernel_of(view, old_b, {k.arch for k in new.tables})
        kd = delta_kernels(old, new, lists)
    except (KabiError, koji.GenericError) as exc:
        _fail(fault_message(exc))
    print(dumps(kd) if opts.json else delta_text(kd, opts.summary))
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
        return EXIT_INCOMPATIBLE
    if not watcher.is_success():
        sys.stderr.write("%s\n" % escape(watcher.get_failure().strip() or
                                          "kabiCheck task %d did not succeed" % task_id))
        return EXIT_INCOMPATIBLE
    if not quiet:
        try:
            print(escape_lines(session.downloadTaskOutput(task_id, "kabi-report.txt").decode(
                "utf-8", "replace").rstrip("\n")))
        except koji.GenericError:
            print(escape_lines(str(session.getTaskResult(task_id))))
    return EXIT_OK
