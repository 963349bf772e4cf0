"""hubsim works with the REAL koji client: ClientSession over HTTP, kojid's
BaseTaskHandler, the ``koji`` CLI as a subprocess, and the ``kojihub`` stand-in."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import koji
import koji.plugin
import koji.tasks
import pytest
import requests

from tests.hubsim import HubServer, State, install_standin, kojid_options, run_task_handler
from tests.support import rpmfactory as rf

ROOT = Path(__file__).resolve().parents[2]
KOJI_CLI = Path(sys.executable).with_name('koji')

SYMS = rf.random_symbols(40, seed=7)
SYMS2 = {**SYMS, sorted(SYMS)[0]: SYMS[sorted(SYMS)[0]] ^ 0x5A5A}  # one CRC changed
KMOD_SYMS = {s: SYMS[s] for s in sorted(SYMS)[:6]}
SOURCE = 'git+https://src.example/rpms/kmod-foo.git#0123456789abcdef0123456789abcdef01234567'

#: keys of kojihub.get_build() (kojihub.py l.4638) and readTaggedBuilds() (l.1398)
BUILD_KEYS = {'id', 'build_id', 'package_id', 'package_name', 'name', 'version', 'release',
              'epoch', 'nvr', 'draft', 'state', 'task_id', 'owner_id', 'owner_name',
              'volume_id', 'volume_name', 'creation_event_id', 'creation_time', 'creation_ts',
              'start_time', 'start_ts', 'completion_time', 'completion_ts', 'promotion_time',
              'promotion_ts', 'promoter_id', 'promoter_name', 'source', 'extra', 'cg_id',
              'cg_name'}
TAGGED_KEYS = {'tag_id', 'tag_name', 'id', 'build_id', 'version', 'release', 'epoch', 'state',
               'completion_time', 'promotion_time', 'start_time', 'task_id', 'draft',
               'owner_id', 'owner_name', 'promoter_id', 'promoter_name', 'creation_event_id',
               'creation_time', 'volume_id', 'volume_name', 'package_id', 'package_name',
               'name', 'nvr', 'create_event'}
RPM_KEYS = {'id', 'name', 'version', 'release', 'arch', 'draft', 'epoch', 'payloadhash', 'size',
            'buildtime', 'build_id', 'buildroot_id', 'external_repo_id', 'external_repo_name',
            'metadata_only', 'extra'}


@pytest.fixture(scope='module')
def rpms(tmp_path_factory) -> dict:
    if shutil.which('rpmbuild') is None:
        pytest.skip('rpmbuild is not installed')
    out = tmp_path_factory.mktemp('hubsim-rpms')
    cache = tmp_path_factory.mktemp('hubsim-cache')
    k1 = rf.kernel_build('kernel', '5.14.0', '1.el9', ('x86_64',), {'x86_64': SYMS},
                         split=('core', 'modules'))
    k2 = rf.kernel_build('kernel', '5.14.0', '2.el9', ('x86_64',), {'x86_64': SYMS2},
                         split=('core', 'modules'))
    kmod = rf.kmod_build('kmod-foo', '1.0', '1.el9', 'x86_64', KMOD_SYMS)
    return {'k1': rf.build_rpms(k1, out / 'k1', cache_dir=cache),
            'k2': rf.build_rpms(k2, out / 'k2', cache_dir=cache),
            'kmod': rf.build_rpms(kmod, out / 'kmod', cache_dir=cache, srpm=False)}


@pytest.fixture
def state(rpms):
    st = State()
    st.add_user('alice', password='alice-pw')
    st.add_host('builder1', channels=('default', 'kabi'))
    st.add_tag('el9-build')
    st.add_tag('el9-kernel', parents=['el9-build'])
    st.add_tag('el9-kmods', parents=['el9-kernel'])
    st.add_target('el9-kmods', 'el9-kernel', 'el9-kmods')
    st.import_rpms(rpms['k1'], owner='kojiadmin', tag='el9-kernel')
    st.import_rpms(rpms['k2'], owner='kojiadmin', tag='el9-kernel')
    st.import_rpms(rpms['kmod'], owner='alice', source=SOURCE, task_id=True,
                   extra={'custom_user_metadata': {'kabi': True}}, tag='el9-kmods')
    yield st
    st.cleanup()


@pytest.fixture
def standin(state):
    kojihub = install_standin(state)
    yield kojihub
    kojihub.unload_plugins()
    kojihub.reset_context()
    kojihub.STATE = None


@pytest.fixture
def hub(state):
    with HubServer(state) as server:
        yield server


def test_import_layout_and_build_dicts(hub, state, rpms):
    s = hub.client()
    b = s.getBuild('kmod-foo-1.0-1.el9', strict=True)
    assert set(b) == BUILD_KEYS
    assert b['source'] == SOURCE and b['owner_name'] == 'alice'
    assert b['extra'] == {'custom_user_metadata': {'kabi': True}}
    assert b['state'] == koji.BUILD_STATES['COMPLETE'] and b['draft'] is False
    assert s.getTaskInfo(b['task_id'])['method'] == 'build'
    assert isinstance(b['creation_time'], str) and isinstance(b['creation_ts'], float)
    # binaries grouped by SOURCERPM; files at koji.PathInfo's layout
    k1 = s.getBuild('kernel-5.14.0-1.el9')
    k1_rpms = s.listBuildRPMs(k1['id'])
    assert sorted(r['arch'] for r in k1_rpms) == ['src', 'x86_64', 'x86_64']
    assert set(k1_rpms[0]) == RPM_KEYS | {'nvr'}
    core = s.getRPM('kernel-core-5.14.0-1.el9.x86_64', strict=True)
    assert set(core) == RPM_KEYS and core['external_repo_name'] == 'INTERNAL'
    pi = koji.PathInfo(state.topdir)
    path = Path(pi.build(k1)) / pi.rpm(core)
    assert path.is_file() and path.stat().st_size == core['size']
    hdr = koji.get_rpm_header(str(path))
    assert core['payloadhash'] == koji.hex_string(hdr[koji.rpm.RPMTAG_SIGMD5])


def test_tags_latest_and_inheritance(hub, state):
    s = hub.client()
    tagged = s.listTagged('el9-kernel')
    assert {t['nvr'] for t in tagged} == {'kernel-5.14.0-1.el9', 'kernel-5.14.0-2.el9'}
    assert set(tagged[0]) == TAGGED_KEYS
    assert tagged[0]['create_event'] > tagged[1]['create_event']  # most recently tagged first
    assert [b['nvr'] for b in s.getLatestBuilds('el9-kernel')] == ['kernel-5.14.0-2.el9']
    # "latest" = most recently tagged, not highest NVR: re-tag release 1
    state.untag_build('el9-kernel', 'kernel-5.14.0-1.el9')
    ev = state.tag_build('el9-kernel', 'kernel-5.14.0-1.el9')
    assert [b['nvr'] for b in s.getLatestBuilds('el9-kernel')] == ['kernel-5.14.0-1.el9']
    assert [b['nvr'] for b in s.getLatestBuilds('el9-kernel', event=ev - 3)] == \
        ['kernel-5.14.0-2.el9']
    # inheritance: the kmod tag sees the kernel through el9-kernel
    latest = {b['name']: b for b in s.getLatestBuilds('el9-kmods')}
    assert latest['kernel']['tag_name'] == 'el9-kernel' and latest['kmod-foo']['tag_name'] == \
        'el9-kmods'
    assert [link['name'] for link in s.getFullInheritance('el9-kmods')] == ['el9-kernel',
                                                                           'el9-build']
    rpms, _builds = s.getLatestRPMS('el9-kmods', arch='x86_64')
    assert {r['name'] for r in rpms} == {'kernel-core', 'kernel-modules', 'kmod-foo'}
    assert s.getBuildTarget('el9-kmods')['dest_tag_name'] == 'el9-kmods'
    assert s.listTagged('nope', strict=False) == []
    with pytest.raises(koji.GenericError, match='No such tagInfo'):
        s.listTagged('nope')


def test_rpm_deps_read_from_the_stored_header(hub):
    s = hub.client()
    core = s.getRPM('kernel-core-5.14.0-1.el9.x86_64')
    provides = s.getRPMDeps(core['id'], koji.DEP_PROVIDE)
    ksyms = {d['name'][7:-1]: d for d in provides if d['name'].startswith('kernel(')}
    assert {k: int(d['version'], 16) for k, d in ksyms.items()} == SYMS
    assert all(d['flags'] & koji.RPMSENSE_EQUAL and d['type'] == koji.DEP_PROVIDE
               for d in ksyms.values())
    kmod = s.getRPM('kmod-foo-1.0-1.el9.x86_64')
    as_list = s.getRPMDeps(kmod['id'], koji.DEP_REQUIRE, queryOpts={'asList': True})
    assert ['kernel(%s)' % sorted(KMOD_SYMS)[0], rf.format_crc(KMOD_SYMS[sorted(KMOD_SYMS)[0]]),
            koji.RPMSENSE_EQUAL, koji.DEP_REQUIRE] in as_list
    assert s.getRPMDeps(999999) == []
    hdrs = s.getRPMHeaders(core['id'], headers=['providename', 'provideversion'])
    assert len(hdrs['providename']) == len(hdrs['provideversion']) == len(provides)


def test_multicall_batches_and_faults(hub):
    s = hub.client()
    hub.reset_log()
    nvrs = ['kernel-5.14.0-1.el9', 'kernel-5.14.0-2.el9', 'kmod-foo-1.0-1.el9', 'nope-1-1']
    with s.multicall(batch=2) as m:
        calls = [m.getBuild(n, strict=True) for n in nvrs]
    assert [c.result['nvr'] for c in calls[:3]] == nvrs[:3]
    with pytest.raises(koji.GenericError, match='No such build'):
        _ = calls[3].result
    assert len(hub.calls('multiCall')) == 2 and hub.round_trips == 2
    assert [c.multicall for c in hub.calls('getBuild')] == [True] * 4
    # one failing entry does not roll back the others
    alice = hub.client('alice')
    with alice.multicall(strict=False) as m:
        ok = m.tagBuild('el9-kmods', 'kernel-5.14.0-1.el9')
        bad = m.tagBuild('el9-kmods', 'nope-1-1')
    assert isinstance(ok.result, int)
    with pytest.raises(koji.GenericError):
        _ = bad.result


def test_faults_map_to_koji_exceptions(hub):
    s = hub.client()
    with pytest.raises(koji.GenericError, match="No such build: 'nope-1-1'"):
        s.getBuild('nope-1-1', strict=True)
    assert s.getBuild('nope-1-1') is None
    with pytest.raises(koji.GenericError, match=r'Invalid method: kabi\.check'):
        s.callMethod('kabi.check', 1)
    with pytest.raises(koji.ParameterError):
        s.getBuild()
    with pytest.raises(koji.ActionNotAllowed):
        s.tagBuild('el9-kmods', 'kernel-5.14.0-1.el9')  # anonymous
    with pytest.raises(koji.AuthError):
        bad = hub.client()
        bad.setSession({'session-id': 999, 'session-key': 'x', 'header-auth': True})
        bad.getLoggedInUser()
    assert s.getAPIVersion() == koji.API_VERSION and s.hello() == 'Hello World'


def test_users_perms_and_tag_task(hub, state):
    alice = hub.client('alice')
    me = alice.getLoggedInUser()
    assert me['name'] == 'alice' and alice.getPerms() == [] and not alice.hasPerm('admin')
    task_id = alice.tagBuild('el9-kmods', 'kernel-5.14.0-1.el9')
    info = alice.getTaskInfo(task_id, request=True)
    assert info['method'] == 'tagBuild' and info['state'] == koji.TASK_STATES['CLOSED']
    assert info['owner'] == me['id'] and info['priority'] == 10
    assert 'kernel-5.14.0-1.el9' in [b['nvr'] for b in alice.listTagged('el9-kmods')]
    state.set_policy('tag', 'tag el9-kmods && user alice :: deny kABI check has not passed\n'
                            'all :: allow')
    with pytest.raises(koji.ActionNotAllowed, match='kABI check has not passed'):
        alice.tagBuild('el9-kmods', 'kernel-5.14.0-2.el9')
    assert hub.client('kojiadmin').hasPerm('admin')


class _KabiTestTask(koji.tasks.BaseTaskHandler):
    Methods = ['kabiTest']
    _taskWeight = 0.5

    def handler(self, build_id, opts=None):
        report = os.path.join(self.workdir, 'report.json')
        with open(report, 'w') as fo:
            fo.write('{"status": "ok", "build": %d}\n' % build_id)
        self.uploadFile(report)
        self.uploadFile(report, relPath='sub', remoteName='copy.json')
        sub = self.subtask('build', [SOURCE, 'el9-kmods', {'scratch': True}], label='rebuild')
        again = self.subtask('build', [SOURCE, 'el9-kmods', {}], label='rebuild')
        assert again == sub  # label makes subtask idempotent
        results = self.wait(sub, all=True)
        return {'status': 'ok', 'children': {str(k): v for k, v in results.items()}}


def test_builder_task_subtask_wait_and_upload(hub, state, tmp_path):
    state.autorun['build'] = lambda info: {'srpms': [], 'rpms': [], 'args': info['request']}
    build = hub.client().getBuild('kmod-foo-1.0-1.el9')
    task_id = state.make_task('kabiTest', [build['id']], owner='alice', channel='kabi')
    assert state.make_task_calls[-1]['opts'] == {'owner': 'alice', 'channel': 'kabi'}
    builder = hub.client('builder1')
    opts = kojid_options(str(tmp_path / 'work'), topurl=hub.topurl)
    result = run_task_handler(_KabiTestTask, task_id, builder, opts)

    s = hub.client()
    info = s.getTaskInfo(task_id)
    assert info['state'] == koji.TASK_STATES['CLOSED'] and info['channel_id'] == \
        s.getChannel('kabi')['id']
    assert s.getTaskResult(task_id) == result
    [child] = s.getTaskChildren(task_id, request=True)
    assert child['method'] == 'build' and child['label'] == 'rebuild'
    assert child['request'] == [SOURCE, 'el9-kmods', {'scratch': True}]
    assert child['owner'] == info['owner'] and child['priority'] == info['priority'] - 1
    assert child['channel_id'] == info['channel_id']  # default policy: child inherits channel
    assert result['children'] == {str(child['id']): {
        'srpms': [], 'rpms': [], 'args': [SOURCE, 'el9-kmods', {'scratch': True}]}}
    assert len(hub.calls('host.subtask')) == 2
    assert hub.calls('host.subtask')[0].args[:2] == ('build', [SOURCE, 'el9-kmods',
                                                              {'scratch': True}])
    assert sorted(s.listTaskOutput(task_id)) == ['report.json', 'sub/copy.json']
    expect = b'{"status": "ok", "build": %d}\n' % build['id']
    assert s.downloadTaskOutput(task_id, 'report.json') == expect
    assert s.downloadTaskOutput(task_id, 'report.json', offset=2, size=6) == expect[2:8]
    uploads = hub.calls('rawUpload')
    assert uploads and all(c.user == 'builder1' for c in uploads)
    # host.* calls need a host session
    with pytest.raises(koji.AuthError):
        hub.client('alice').host.subtask('build', [], task_id)


def test_wait_without_runner_fails_fast(hub, state, tmp_path):
    task_id = state.make_task('kabiTest', [1])
    builder = hub.client('builder1')
    with pytest.raises(koji.GenericError, match='nothing will run'):
        run_task_handler(_KabiTestTask, task_id, builder, kojid_options(str(tmp_path)))
    info = state.task_info(task_id)
    assert info['state'] == koji.TASK_STATES['FAILED']
    with pytest.raises(koji.GenericError, match='nothing will run'):
        hub.client().getTaskResult(task_id)


def test_ranged_get_counts_bytes(hub, state):
    core = hub.client().getRPM('kernel-core-5.14.0-2.el9.x86_64')
    build = hub.client().getBuild(core['build_id'])
    pi = koji.PathInfo(hub.topurl)
    url = pi.build(build) + '/' + pi.rpm(core)
    rel = url[len(hub.topurl) + 1:]
    r = requests.get(url, headers={'Range': 'bytes=0-1023'}, timeout=10)
    assert r.status_code == 206 and len(r.content) == 1024
    assert r.headers['Content-Range'] == 'bytes 0-1023/%d' % core['size']
    assert hub.bytes_served[rel] == 1024
    assert requests.get(url, headers={'Range': 'bytes=-100'}, timeout=10).content == \
        Path(state.rpm_file(core['id'])).read_bytes()[-100:]
    assert requests.get(url, headers={'Range': 'bytes=99999999-'}, timeout=10).status_code == 416
    hub.ignore_range = True
    r = requests.get(url, headers={'Range': 'bytes=0-1023'}, timeout=10)
    assert r.status_code == 200 and len(r.content) == core['size']
    assert hub.bytes_served[rel] == 1024 + 100 + core['size']
    assert requests.get(hub.topurl + '/../etc/passwd', timeout=10).status_code == 404


def test_plugin_calls_can_be_mounted_or_absent(hub, state):
    from koji.plugin import export_in

    @export_in('kabi')
    def check(build, strict=False):
        """Pretend kABI check that reads the build through the stand-in kojihub."""
        kojihub = install_standin()
        return {'nvr': kojihub.get_build(build, strict=True)['nvr'], 'strict': strict}

    module = type(sys)('fake_kabi_hub')
    module.check = check
    hub.load_plugin(module)
    s = hub.client()
    assert s.callMethod('kabi.check', 'kmod-foo-1.0-1.el9', strict=True) == {
        'nvr': 'kmod-foo-1.0-1.el9', 'strict': True}
    assert 'kabi.check' in s.system.listMethods()
    hub.plugins_enabled = False
    with pytest.raises(koji.GenericError, match=r'Invalid method: kabi\.check'):
        s.callMethod('kabi.check', 1)


def test_import_callbacks_run_in_hub_order(state, standin, rpms, tmp_path):
    seen = []

    def cb(cbtype, *args, **kws):
        seen.append((cbtype, kws.get('type'), kws.get('attribute'),
                     kws['build']['nvr'] if kws.get('build') else None))
    types = ('preImport', 'postImport', 'preBuildStateChange', 'postBuildStateChange')
    for t in types:
        koji.plugin.register_callback(t, cb)
    try:
        k3 = rf.kernel_build('kernel', '5.14.0', '3.el9', ('x86_64',), {'x86_64': SYMS},
                             split=('core',))
        paths = rf.build_rpms(k3, tmp_path, srpm=False)
        state.import_rpms(paths, draft=True)
    finally:
        for t in types:
            koji.plugin.callbacks[t].remove(cb)
    assert [s[:2] for s in seen] == [('preBuildStateChange', None),
                                     ('postBuildStateChange', None),
                                     ('preImport', 'build'), ('preBuildStateChange', None),
                                     ('postBuildStateChange', None), ('preImport', 'rpm'),
                                     ('postImport', 'rpm'), ('postImport', 'build')]
    b = standin.get_build(seen[-1][3], strict=True)
    assert b['draft'] is True and b['release'] == '3.el9,draft_%d' % b['id']
    assert Path(state.rpm_file('kernel-core-5.14.0-3.el9.x86_64')).is_file()


def test_standin_signatures_context_and_make_task(state, standin):
    kojihub = standin
    import kojihub as imported
    assert imported is kojihub and kojihub.STATE is state
    # signatures copied from kojihub.py @ 2083513a
    expected = {
        'get_build': '(buildInfo, strict=False)',
        'get_tag': '(tagInfo, strict=False, event=None, blocked=False)',
        'get_user': '(userInfo=None, strict=False, krb_princs=True, groups=False)',
        'get_rpm': '(rpminfo, strict=False, multi=False)',
        'list_rpms': '(buildID=None, buildrootID=None, imageID=None, '
                     'componentBuildrootID=None, hostID=None, arches=None, queryOpts=None, '
                     'draft=None)',
        'get_build_target': '(info, event=None, strict=False)',
        'readTaggedBuilds': '(tag, event=None, inherit=False, latest=False, package=None, '
                            'owner=None, type=None, extra=False, draft=None)',
        'readTaggedRPMS': '(tag, package=None, arch=None, event=None, inherit=False, '
                          'latest=True, rpmsigs=False, owner=None, type=None, extra=True, '
                          'draft=None)',
        'make_task': '(method, arglist, **opts)',
        'get_next_release': '(build_info, incr=1)',
        'check_policy': "(name, data, default='deny', strict=False, force=False)",
        'assert_policy': "(name, data, default='deny', force=False)",
        'convert_value': "(value, cast=None, message=None, exc_type=<class "
                         "'koji.ParameterError'>, none_allowed=False, check_only=False)",
    }
    assert {n: str(inspect.signature(getattr(kojihub, n))) for n in expected} == expected
    assert str(inspect.signature(kojihub.RootExports.getRPMDeps)) == \
        '(self, rpmID, depType=None, queryOpts=None, strict=False)'

    kojihub.login_as(None)
    with pytest.raises(koji.GenericError, match='task must have an owner'):
        kojihub.make_task('kabiCheck', [1])
    sess = kojihub.login_as('bob', perms=['kabi'])
    assert sess.logged_in and sess.hasPerm('kabi') and not sess.hasPerm('admin')
    sess.assertPerm('kabi')
    with pytest.raises(koji.ActionNotAllowed, match='tag permission required'):
        sess.assertPerm('tag')
    admin = kojihub.login_as('kojiadmin')
    admin.assertPerm('tag')                # admin passes assertPerm ...
    assert not admin.hasPerm('tag')        # ... but hasPerm is exact
    kojihub.login_as('bob')
    task_id = kojihub.make_task('kabiCheck', [1], channel='kabi')
    info = kojihub.Task(task_id).getInfo(request=True)
    assert info['owner'] == kojihub.get_user('bob')['id'] and info['request'] == (1,)
    assert info['channel_id'] == kojihub.get_channel('kabi')['id']
    assert state.make_task_calls[-1] == {'method': 'kabiCheck', 'arglist': [1],
                                         'opts': {'channel': 'kabi'}}
    tag = kojihub.get_tag('el9-kmods', strict=True)
    names = {b['name'] for b in kojihub.readTaggedBuilds(tag['id'], inherit=True,
                                                         latest=True)}
    assert names == {'kernel', 'kmod-foo'}
    rpms, _builds = kojihub.readTaggedRPMS(tag['id'], inherit=True)
    assert inspect.isgenerator(rpms) and {r['name'] for r in rpms} >= {'kmod-foo'}
    assert kojihub.check_policy('tag', {'tag': tag['id']}) == (True, 'missing policy')
    from kojihub.db import QueryProcessor, UpdateProcessor
    b = kojihub.get_build('kmod-foo-1.0-1.el9')
    update = UpdateProcessor('build', clauses=['id=%(id)i'], values={'id': b['id']})
    update.set(extra='{"kabi": {"status": "ok"}}')
    assert update.execute() == 1
    assert kojihub.get_build(b['id'])['extra'] == {'kabi': {'status': 'ok'}}
    q = QueryProcessor(tables=['build'], columns=['id'], clauses=['state = %(st)i'],
                       values={'st': koji.BUILD_STATES['COMPLETE']}, opts={'asList': True})
    assert [b['id']] in q.execute()


def test_koji_cli_subprocess(hub, state, tmp_path):
    env = {'HOME': str(tmp_path), 'PATH': os.environ.get('PATH', '/usr/bin'), 'LC_ALL': 'C.UTF-8'}
    conf = tmp_path / 'koji.conf'  # the CLI insists on a profile section
    conf.write_text('[koji]\nserver = %s\ntopurl = %s\n' % (hub.url, hub.topurl))
    base = [str(KOJI_CLI), '--config', str(conf), '--profile', 'koji']
    out = subprocess.run([*base, '--noauth', 'list-tagged', '--quiet', 'el9-kernel'],
                         capture_output=True, text=True, env=env, timeout=60, check=True)
    assert sorted(line.split()[0] for line in out.stdout.splitlines()) == [
        'kernel-5.14.0-1.el9', 'kernel-5.14.0-2.el9']
    out = subprocess.run([*base, '--authtype', 'password', '--user', 'alice', '--password',
                          'alice-pw', 'tag-build', '--nowait', 'el9-kmods',
                          'kernel-5.14.0-2.el9'],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'Created task' in out.stdout
    [task] = [c for c in hub.calls('tagBuild') if c.user == 'alice']
    assert task.args == ('el9-kmods', 'kernel-5.14.0-2.el9')
    assert hub.calls('login')[0].args[0] == 'alice'


def test_server_subprocess_mode(rpms, tmp_path):
    for p in rpms['kmod']:
        shutil.copy(p, tmp_path)
    proc = subprocess.Popen([sys.executable, '-m', 'tests.hubsim.server', '--state',
                             str(tmp_path), '--tag', 'el9-kmods', '--port', '0'],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        topurl = proc.stdout.readline().strip()
        assert url.endswith('/kojihub') and topurl.endswith('/kojifiles')
        s = koji.ClientSession(url)
        [b] = s.listTagged('el9-kmods')
        assert b['nvr'] == 'kmod-foo-1.0-1.el9'
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_more_calls_with_real_argument_names(hub, state):
    s = hub.client()
    alice = hub.client('alice')
    assert s.getUser('alice')['usertype'] == koji.USERTYPES['NORMAL']
    assert s.getPackage('kmod-foo')['name'] == 'kmod-foo'
    pkgs = s.listPackages(tagID='el9-kmods', inherited=True)
    assert {p['package_name'] for p in pkgs} == {'kernel', 'kmod-foo'}
    assert s.getNextRelease({'name': 'kernel', 'version': '5.14.0'}) == '3.el9'
    builds = s.listBuilds(packageID='kernel', state=koji.BUILD_STATES['COMPLETE'],
                          queryOpts={'order': '-build_id', 'limit': 1})
    assert [b['nvr'] for b in builds] == ['kernel-5.14.0-2.el9'] and 'id' not in builds[0]
    assert [b['nvr'] for b in s.listBuilds(userID='alice')] == ['kmod-foo-1.0-1.el9']
    ev = s.getLastEvent()
    assert ev['id'] == state.last_event() and isinstance(ev['ts'], float)
    parent = state.make_task('kabiCheck', [1], owner='alice')
    state.open_task(parent, 'builder1')
    child = hub.client('builder1').host.subtask('build', [SOURCE, 'el9-kmods', {}], parent)
    assert [t['id'] for t in s.listTasks({'parent': parent})] == [child]
    assert [t['request'] for t in s.listTasks({'method': 'build', 'decode': True,
                                               'state': [koji.TASK_STATES['FREE']]})] == [
        [SOURCE, 'el9-kmods', {}]]
    two = hub.client('builder1').host.subtask2(parent, {'label': 'two'}, 'build', SOURCE,
                                               target='el9-kmods')
    assert s.getTaskInfo(two, request=True)['request'] == [
        SOURCE, {'target': 'el9-kmods', '__starstar': True}]
    with pytest.raises(koji.ActionNotAllowed):
        hub.client().cancelTask(parent)
    alice.cancelTask(parent)
    assert state.task_info(child)['state'] == koji.TASK_STATES['CANCELED']
    with pytest.raises(koji.GenericError, match='canceled'):
        s.getTaskResult(child)
    inh = s.getInheritanceData('el9-kmods')
    assert [(i['name'], i['priority']) for i in inh] == [('el9-kernel', 0)]
    load = hub.client('builder1').host.getLoadData()
    assert load[0][0]['name'] == 'builder1' and len(load[0][0]['channels']) == 2


def test_callback_error_rolls_the_call_back(hub, state):
    def veto(cbtype, *args, **kws):
        raise RuntimeError('vetoed by test')

    koji.plugin.register_callback('postTag', veto)
    try:
        admin = hub.client('kojiadmin')
        with pytest.raises(koji.CallbackError, match='vetoed by test'):
            admin.tagBuildBypass('el9-kmods', 'kernel-5.14.0-1.el9')
        task_id = admin.tagBuild('el9-kmods', 'kernel-5.14.0-1.el9')
        assert admin.getTaskInfo(task_id)['state'] == koji.TASK_STATES['FAILED']
        with pytest.raises(koji.CallbackError):
            admin.getTaskResult(task_id)
    finally:
        koji.plugin.callbacks['postTag'].remove(veto)
    assert 'kernel-5.14.0-1.el9' not in [b['nvr'] for b in admin.listTagged('el9-kmods')]
    assert [c.fault[0] for c in hub.calls('tagBuildBypass')] == [koji.CallbackError.faultCode]
