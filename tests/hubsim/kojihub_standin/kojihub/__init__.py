"""Stand-in for the hub package ``kojihub`` (Koji >= 1.33 layout), for unit tests.

Put ``tests/hubsim/kojihub_standin`` on ``sys.path`` (or call
``hubsim.install_standin(state)``) and ``import kojihub`` gives the hub-internal
functions with the real signatures, working on an in-memory
:class:`hubsim.state.State`::

    import kojihub
    kojihub.STATE = state                 # the State the functions use
    kojihub.login_as('alice', perms=['kabi'])   # sets koji.context.context.session
    kojihub.get_build('kmod-foo-1.0-1.el9', strict=True)
    kojihub.make_task('kabiCheck', [build_id], owner='alice', channel='kabi')
    kojihub.STATE.make_task_calls          # what was submitted

Signatures copied from kojihub/kojihub.py (and auth.py, db.py) of
github koji-project/koji master at commit 2083513aab6ed193215efebb21823d905e02f339
(2025-07-02; pre-1.36, ``git describe`` koji-1.35.2-154).  Covered (bodies are
hubsim's, over the in-memory tables):

* lookups: get_build, find_build_id, new_build, get_next_release, get_build_type,
  get_rpm, list_rpms, get_tag, get_tag_id, get_tag_extra, list_tags, lookup_name,
  lookup_tag, lookup_package, get_package_id, lookup_perm, get_perm_id, get_channel,
  get_channel_id, get_host, list_channels, get_user, get_user_perms, get_user_groups,
  get_build_target, get_build_targets, lookup_build_target
* tags: readTaggedBuilds, readTaggedRPMS, readPackageList, readInheritanceData,
  readDescendantsData, readFullInheritance, check_tag_access, assert_tag_access,
  _tag_build, _direct_tag_build, _untag_build, _direct_untag_build, pkglist_add,
  _direct_pkglist_add
* tasks: make_task, Task (getInfo, getResult, getRequest, getChildren, open, close,
  fail, cancel, cancelChildren, free, verifyHost/assertHost, verifyOwner/assertOwner,
  getOwner, isFinished...), Host, list_task_output, get_upload_path
* policy: check_policy, assert_policy, eval_policy, policy_get_user, policy_get_pkg,
  policy_data_from_task_args and the tests operation, package, version, release, tag,
  fromtag, hastag, skip_tag, is_child_task, method, user, is_build_owner, is_draft,
  user_in_group, has_perm, source, policy, is_new_package
* convert_value, parse_json, _applyQueryOpts, RootExports and HostExports (the exported
  calls hubsim serves over HTTP, see server.py), auth calls, ``context``
* ``kojihub.db``: QueryProcessor/UpdateProcessor/InsertProcessor over single tables
  with simple clauses (see db.py)

Everything not listed raises AttributeError, as on a hub without that feature.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

import koji
from koji.context import context


def _find_core():
    here = os.path.dirname(os.path.abspath(__file__))
    hubsim_dir = os.path.dirname(os.path.dirname(here))
    core_file = os.path.join(hubsim_dir, 'hubcore.py')
    for mod in list(sys.modules.values()):
        fn = getattr(mod, '__file__', None)
        if fn and os.path.abspath(fn) == core_file:
            return mod
    tests_dir = os.path.dirname(hubsim_dir)
    if os.path.exists(os.path.join(tests_dir, '__init__.py')):
        root = os.path.dirname(tests_dir)
        if root not in sys.path:
            sys.path.insert(0, root)
        return importlib.import_module('tests.hubsim.hubcore')
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    return importlib.import_module('hubsim.hubcore')


_core = _find_core()
globals().update({k: v for k, v in vars(_core).items()
                  if not k.startswith('__') and k not in ('annotations',)})

#: the plugin callbacks registered through load_plugin()
_LOADED: list = []
_BASEDIR = koji.pathinfo.topdir


class _StandinModule(types.ModuleType):
    """Lets ``kojihub.STATE = state`` switch the State the functions use."""

    @property
    def STATE(self):
        return _core.get_default_state()

    @STATE.setter
    def STATE(self, value):
        _core.set_default_state(value)
        # hub code (and plugins) find files through koji.pathinfo, as on a real hub
        koji.pathinfo.topdir = value.topdir if value is not None else _BASEDIR


sys.modules[__name__].__class__ = _StandinModule


class _Handlers:
    """``context.handlers`` for in-process calls (RootExports/HostExports/auth)."""

    def __init__(self, extra=None):
        self.extra = extra if extra is not None else {}

    def get(self, name):
        if name in self.extra:
            return self.extra[name]
        if name.startswith('host.'):
            func = getattr(_core.HostExports(), name[5:], None)
        elif name in _core.AUTH_FUNCTIONS:
            func = _core.AUTH_FUNCTIONS[name]
        else:
            func = None if name.startswith('_') else getattr(_core.RootExports(), name, None)
        if func is None:
            raise koji.GenericError("Invalid method: %s" % name)
        return func

    def call(self, __name, *args, **kwargs):
        return self.get(__name)(*args, **kwargs)


def login_as(user=None, perms=None, *, host=False, state=None):
    """Set ``koji.context.context.session`` (and opts/policy/handlers) as the hub does.

    ``user``: a user (or, with ``host=True``, builder host) name; created if missing.
    ``perms`` are granted to it.  None logs out (anonymous session).  Returns the
    session object (``assertPerm``/``hasPerm``/``assertLogin``/``user_id``/...)."""
    st = state or _core.get_default_state()
    if st is None:
        raise koji.GenericError('hubsim: set kojihub.STATE first')
    with st.using():
        context.opts = st.opts
        context.policy = st.policy()
        if not hasattr(context, 'handlers'):
            context.handlers = _Handlers()
        if user is None:
            context.session = _core.Session(st)
            return context.session
        if _core.get_user(user) is None:
            if host:
                st.add_host(user)
            else:
                st.add_user(user)
        if perms:
            st.grant(user, *perms)
        sinfo = st.new_session(user)
        context.session = _core.Session(st, sinfo['session-id'], sinfo['session-key'])
        return context.session


def reset_context():
    """Forget the session/opts/policy/event this thread's context carries."""
    for name in ('session', 'opts', 'policy', 'handlers', 'event_id', 'commit_pending',
                 'method', 'params'):
        if hasattr(context, name):
            delattr(context, name)


def call(method, *args, **kwargs):
    """Call an exported method by its XML-RPC name (``getRPMDeps``, ``host.subtask``)."""
    if not hasattr(context, 'handlers'):
        context.handlers = _Handlers()
    return context.handlers.call(method, *args, **kwargs)


def load_plugin(module):
    """Register a hub plugin's callbacks (koji.plugin), exported calls (for
    ``context.handlers``) and policy tests, like kojixmlrpc; undo with unload_plugins()."""
    if not hasattr(context, 'handlers'):
        context.handlers = _Handlers()
    for v in vars(module).values():
        if isinstance(v, type) or not callable(v):
            continue
        if getattr(v, 'exported', False):
            context.handlers.extra[getattr(v, 'export_alias', v.__name__)] = v
        for cbtype in getattr(v, 'callbacks', None) or ():
            koji.plugin.register_callback(cbtype, v)
            _LOADED.append((cbtype, v))
    st = _core.get_default_state()
    if st is not None:
        st.add_policy_module(module)


def unload_plugins():
    while _LOADED:
        cbtype, func = _LOADED.pop()
        if func in koji.plugin.callbacks.get(cbtype, []):
            koji.plugin.callbacks[cbtype].remove(func)
