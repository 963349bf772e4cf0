"""A real HTTP Koji hub over a :class:`~.state.State`, for the real koji client.

``POST /kojihub`` speaks Koji's XML-RPC dialect (koji.xmlrpcplus marshalling,
datetimes as strings, faults with the GenericError subclass faultCode so
``koji.convertFault`` rebuilds the right exception, ``multiCall``, the
``rawUpload`` octet-stream POST that ``ClientSession.fastUpload`` sends), like
``kojihub/kojixmlrpc.py``.  ``GET /kojifiles/<path>`` serves ``state.topdir``
(single-range ``Range`` requests -> 206, or always 200 with ``ignore_range``) and
counts bytes per path.

Authentication: ``Koji-Session-Id``/``-Key`` headers (or the older query string),
with sessions made by :meth:`State.new_session` (:meth:`HubServer.client`) or the
password ``login`` call the koji CLI makes with ``--authtype password``.

Run standalone: ``python -m tests.hubsim.server --state DIR|FILE.json|FILE.pickle
--port 0`` prints the hub URL, then the files URL, one per line.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import os
import re
import signal
import socket
import sys
import threading
import traceback
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union

import koji
import koji.plugin
import koji.util
from koji.context import context
from koji.xmlrpcplus import ExtendedMarshaller, Fault, dumps, getparser

from . import hubcore
from .state import State

READ_ONLY = re.compile(r'^(get|list|has|query|find|hello|echo|show|taskFinished|checkUpload|'
                       r'downloadTaskOutput|_listapi|system\.|host\.(getID|getLoadData|getHost|'
                       r'getHostTasks|isEnabled|checkPolicy|evalPolicy)$)')


class Marshaller(ExtendedMarshaller):
    """The hub's marshaller: datetimes go out as ``isoformat(' ')`` strings."""

    dispatch = ExtendedMarshaller.dispatch.copy()

    def dump_datetime(self, value, write):
        self.dump_unicode(value.isoformat(' '), write)
    dispatch[datetime.datetime] = dump_datetime


class _Client(koji.ClientSession):
    """The real ClientSession, minus the logout call in ``__del__``.

    The garbage collector may run ``__del__`` inside a server thread that holds the state
    lock; an HTTP logout from there would wait on that lock until the client times out.
    Sessions on this hub never expire, so dropping one locally loses nothing."""

    def __del__(self):
        pass


@dataclass
class Call:
    """One hub call as the server saw it."""

    method: str
    args: tuple
    kwargs: dict
    user: Optional[str]
    request_no: int
    multicall: bool = False
    fault: Optional[tuple] = None
    extra: dict = field(default_factory=dict)


class HandlerAccess:
    """``context.handlers``: call another exported method from hub code."""

    def __init__(self, hub: HubServer) -> None:
        self.__hub = hub

    def call(self, __name, *args, **kwargs):
        return self.__hub.get(__name)(*args, **kwargs)

    def get(self, name):
        return self.__hub.get(name)


class HubServer:
    """Threaded HTTP hub.  ``with HubServer(state) as hub: hub.client('alice')...``"""

    def __init__(self, state: State, *, host: str = '127.0.0.1', port: int = 0,
                 plugins: bool = True, ignore_range: bool = False,
                 koji_version: Optional[str] = None) -> None:
        self.state = state
        #: when False, methods added by register()/load_plugin() are "Invalid method"
        self.plugins_enabled = plugins
        #: when True, /kojifiles ignores Range and always streams the whole file (200)
        self.ignore_range = ignore_range
        self.koji_version = koji_version or koji.__version__
        #: roll a failed call (or multicall entry) back, as the hub's transaction does
        self.rollback = True
        self._bind = (host, port)
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._log_lock = threading.Lock()
        self._calls: list[Call] = []
        self.round_trips = 0
        #: bytes of file content sent per /kojifiles path (relative to topdir)
        self.bytes_served: dict[str, int] = {}
        #: one dict per /kojifiles request: path, range, status, bytes
        self.file_requests: list[dict] = []
        self._builtin: dict[str, Callable] = {}
        self._extra: dict[str, Callable] = {}
        self._callbacks: list[tuple[str, Callable]] = []
        root = hubcore.RootExports()
        for name in dir(root):
            if not name.startswith('_') and callable(getattr(root, name)):
                self._builtin[name] = getattr(root, name)
        hostx = hubcore.HostExports()
        for name in dir(hostx):
            if not name.startswith('_') and callable(getattr(hostx, name)):
                self._builtin['host.' + name] = getattr(hostx, name)
        self._builtin.update(hubcore.AUTH_FUNCTIONS)
        self._builtin['_listapi'] = self._list_api
        self._builtin['system.listMethods'] = lambda: sorted(self._methods())
        self._builtin['system.methodSignature'] = lambda method: 'signatures not supported'
        self._builtin['system.methodHelp'] = self._method_help

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> HubServer:
        self._httpd = ThreadingHTTPServer(self._bind, _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name='hubsim-%d' % self.port)
        self._thread.start()
        self._saved_topdir = koji.pathinfo.topdir
        koji.pathinfo.topdir = self.state.topdir  # hub code (and plugins) use koji.pathinfo
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
            koji.pathinfo.topdir = self._saved_topdir
        self.unload_plugins()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, 'server not started'
        return self._httpd.server_address[1]

    @property
    def base(self) -> str:
        return 'http://%s:%d' % (self._bind[0], self.port)

    @property
    def url(self) -> str:
        """The hub URL for ClientSession / ``koji --server``."""
        return self.base + '/kojihub'

    @property
    def topurl(self) -> str:
        """The files URL (``topurl`` in koji.conf / kojid.conf)."""
        return self.base + '/kojifiles'

    # ------------------------------------------------------------------ registry
    def register(self, name: str, func: Callable) -> None:
        """Mount an extra exported call (a hub plugin's, e.g. ``kabi.check``)."""
        self._extra[name] = func

    def unregister(self, name: str) -> None:
        self._extra.pop(name, None)

    def load_plugin(self, module: Any) -> None:
        """Register a hub plugin module as kojixmlrpc does: exported callables (by
        ``export_alias`` or ``__name__``), ``callbacks``, and its policy tests."""
        for v in vars(module).values():
            if isinstance(v, type) or not callable(v):
                continue
            if getattr(v, 'exported', False):
                self.register(getattr(v, 'export_alias', v.__name__), v)
            for cbtype in getattr(v, 'callbacks', None) or ():
                koji.plugin.register_callback(cbtype, v)
                self._callbacks.append((cbtype, v))
        self.state.add_policy_module(module)

    def unload_plugins(self) -> None:
        """Drop callbacks registered by load_plugin() from koji.plugin's global table."""
        for cbtype, func in self._callbacks:
            with_cb = koji.plugin.callbacks.get(cbtype, [])
            if func in with_cb:
                with_cb.remove(func)
        self._callbacks = []

    def _methods(self) -> dict[str, Callable]:
        methods = dict(self._builtin)
        if self.plugins_enabled:
            methods.update(self._extra)
        return methods

    def get(self, name: str) -> Callable:
        func = self._methods().get(name)
        if func is None:
            raise koji.GenericError("Invalid method: %s" % name)
        return func

    def _list_api(self):
        funcs = []
        for name, func in self._methods().items():
            sig = inspect.signature(func)
            args = [[p, v.default] if v.default is not v.empty else p
                    for p, v in sig.parameters.items()]
            argdesc = '(%s)' % ', '.join(str(x) for x in sig.parameters.values())
            funcs.append({'name': name, 'doc': func.__doc__, 'argdesc': argdesc,
                          'args': args, 'argspec': list(inspect.getfullargspec(func))})
        return funcs

    def _method_help(self, method):
        func = self._methods().get(method)
        if func is None:
            return ""
        args = ', '.join(str(x) for x in inspect.signature(func).parameters.values())
        ret = f'{method}({args})'
        if func.__doc__:
            ret += f'\ndescription: {func.__doc__}'
        return ret

    # ------------------------------------------------------------------ clients
    def session_for(self, user: Union[int, str], **kw) -> dict:
        """sinfo for a new session of a user or host (see State.new_session)."""
        return self.state.new_session(user, **kw)

    def client(self, user: Union[int, str, None] = None, *, opts: Optional[dict] = None,
               **session_kw) -> koji.ClientSession:
        """A real koji.ClientSession on this hub, logged in as ``user`` (a user or host
        name; None = anonymous).  Retries are cut short so a dead hub fails fast."""
        copts = {'max_retries': 1, 'retry_interval': 0.05, 'timeout': 60}
        copts.update(opts or {})
        session = _Client(self.url, copts)
        if user is not None:
            session.setSession(self.session_for(user, **session_kw))
        return session

    # ------------------------------------------------------------------ call log
    def calls(self, method: Optional[str] = None) -> list[Call]:
        """Logged calls (multicall entries included), optionally of one method."""
        with self._log_lock:
            return [c for c in self._calls if method is None or c.method == method]

    def reset_log(self) -> None:
        with self._log_lock:
            self._calls = []
            self.round_trips = 0
            self.bytes_served = {}
            self.file_requests = []

    def _log(self, call: Call) -> None:
        with self._log_lock:
            self._calls.append(call)

    def _next_request(self) -> int:
        with self._log_lock:
            self.round_trips += 1
            return self.round_trips

    def _count_file(self, rel: str, rng: Optional[str], status: int, nbytes: int) -> dict:
        with self._log_lock:
            self.bytes_served[rel] = self.bytes_served.get(rel, 0) + nbytes
            entry = {'path': rel, 'range': rng, 'status': status, 'bytes': nbytes}
            self.file_requests.append(entry)
            return entry

    def _add_bytes(self, entry: dict, nbytes: int) -> None:
        # counted before the bytes hit the socket, so a client that has read them
        # always sees them counted (no race with the server thread)
        with self._log_lock:
            self.bytes_served[entry['path']] += nbytes
            entry['bytes'] += nbytes

    # ------------------------------------------------------------------ dispatch
    def _setup_context(self, environ: dict) -> None:
        context._threadclear()
        context.commit_pending = False
        context.opts = self.state.opts
        context.handlers = HandlerAccess(self)
        context.environ = environ
        context.policy = self.state.policy()
        context.hubsim_state = self.state
        context.hubsim_in_call = True

    def _check_session(self, environ: dict) -> None:
        if hasattr(context, 'session'):
            return
        if 'HTTP_KOJI_SESSION_ID' in environ:
            sid = environ['HTTP_KOJI_SESSION_ID']
            key = environ.get('HTTP_KOJI_SESSION_KEY')
            callnum = environ.get('HTTP_KOJI_SESSION_CALLNUM')
        else:
            args = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
            sid = args.get('session-id', [None])[0]
            key = args.get('session-key', [None])[0]
            callnum = args.get('callnum', [None])[0]
        context.session = hubcore.Session(self.state, sid, key, callnum)

    def _user_name(self) -> Optional[str]:
        sess = getattr(context, 'session', None)
        if sess is not None and sess.logged_in:
            return sess.user_data.get('name')
        return None

    def _dispatch(self, method: str, params: tuple, request_no: int, environ: dict,
                  multicall: bool = False) -> Any:
        context.method = method
        context.params = params
        args, kwargs = koji.decode_args(*params)
        call = Call(method, args, kwargs, None, request_no, multicall)
        self._log(call)
        snap = None
        try:
            self._check_session(environ)
            call.user = self._user_name()
            if method in ('multiCall', 'system.multicall'):
                return self._multicall(args[0] if args else kwargs.get('calls', []),
                                       request_no, environ)
            func = self.get(method)
            if self.rollback and not READ_ONLY.match(method):
                snap = self.state.snapshot()
            result = koji.util.call_with_argcheck(func, args, kwargs)
            if multicall and inspect.isgenerator(result):
                result = list(result)  # an error while iterating belongs to this entry
            return result
        except BaseException as e:
            if snap is not None:
                self.state.restore(snap)
            call.fault = (getattr(e, 'faultCode', 1), str(e))
            raise

    def _multicall(self, calls: list, request_no: int, environ: dict) -> list:
        results = []
        for entry in calls:
            try:
                result = self._dispatch(entry['methodName'], tuple(entry['params']),
                                        request_no, environ, multicall=True)
            except Fault as fault:
                results.append({'faultCode': fault.faultCode, 'faultString': fault.faultString})
            except Exception as e:
                results.append({'faultCode': getattr(e, 'faultCode', 1),
                                'faultString': ', '.join(str(a) for a in e.args),
                                'traceback': traceback.format_exception(type(e), e,
                                                                        e.__traceback__)})
            else:
                results.append([result])
            if hasattr(context, 'event_id'):
                del context.event_id
        return results

    def handle_rpc(self, body: bytes, environ: dict) -> tuple[int, bytes]:
        """One XML-RPC POST -> (HTTP status, response body)."""
        request_no = self._next_request()
        try:
            parser, unmarshaller = getparser()
            parser.feed(body)
            parser.close()
            params, method = unmarshaller.close(), unmarshaller.getmethodname()
        except Exception as e:
            return 400, ('Invalid request: %s\n' % e).encode()
        with self.state.lock:
            self._setup_context(environ)
            try:
                faulted = False
                try:
                    result = self._dispatch(method, params, request_no, environ)
                    response = dumps((result,), methodresponse=1, marshaller=Marshaller)
                except Fault as fault:
                    faulted = True
                    response = dumps(fault, marshaller=Marshaller)
                except Exception as e:
                    faulted = True
                    response = dumps(Fault(*_fault_of(e)), marshaller=Marshaller)
                if not faulted and context.commit_pending:
                    try:
                        koji.plugin.run_callbacks('preCommit')
                        koji.plugin.run_callbacks('postCommit')
                    except Exception:
                        return 500, traceback.format_exc().encode()
                return 200, response.encode()
            finally:
                context._threadclear()

    def handle_upload(self, body: bytes, environ: dict) -> tuple[int, bytes]:
        """The ``rawUpload`` POST (application/octet-stream) of ClientSession.fastUpload."""
        request_no = self._next_request()
        with self.state.lock:
            self._setup_context(environ)
            context.method = None
            call = Call('rawUpload', (), {}, None, request_no, extra={'size': len(body)})
            self._log(call)
            try:
                try:
                    self._check_session(environ)
                    call.user = self._user_name()
                    result = self._upload(body, environ, call)
                    response = dumps((result,), methodresponse=1, marshaller=Marshaller)
                except Exception as e:
                    call.fault = _fault_of(e)
                    response = dumps(Fault(*call.fault), marshaller=Marshaller)
                return 200, response.encode()
            finally:
                context._threadclear()

    def _upload(self, body: bytes, environ: dict, call: Call) -> dict:
        if not context.session.logged_in:
            raise koji.ActionNotAllowed('you must be logged-in to upload a file')
        args = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''), strict_parsing=True)
        name = args['filename'][0]
        path = args.get('filepath', ('',))[0]
        verify = args.get('fileverify', ('',))[0]
        overwrite = args.get('overwrite', ('',))[0]
        offset = int(args.get('offset', ('0',))[0])
        volume = args.get('volume', ('DEFAULT',))[0]
        call.kwargs = {'filepath': path, 'filename': name, 'offset': offset,
                       'overwrite': bool(overwrite), 'fileverify': verify, 'volume': volume}
        fn = hubcore.get_upload_path(path, name, create=True, volume=volume)
        if os.path.lexists(fn):
            if os.path.islink(fn):
                raise koji.GenericError("destination is a symlink: %s" % fn)
            if not os.path.isfile(fn):
                raise koji.GenericError("destination not a file: %s" % fn)
            if offset == 0 and not overwrite:
                raise koji.GenericError("upload path exists: %s" % fn)
        chksum_class = hubcore.get_verify_class(verify)
        fd = os.open(fn, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if offset == -1:
                offset = os.lseek(fd, 0, 2)
            elif overwrite:
                os.ftruncate(fd, offset)
                os.lseek(fd, offset, 0)
            else:
                os.lseek(fd, offset, 0)
            os.write(fd, body)
            if not overwrite:
                flen = os.lseek(fd, 0, 2)
                if flen != offset + len(body):
                    raise koji.GenericError(f"Incorrect upload length for {fn} - Expected "
                                            f"{offset + len(body)}, actual {flen}")
        finally:
            os.close(fd)
        ret = {'size': len(body), 'fileverify': verify, 'offset': offset}
        if verify:
            chk = chksum_class()
            chk.update(body)
            ret['hexdigest'] = chk.hexdigest()
        return ret


def _fault_of(e: BaseException) -> tuple[int, str]:
    """(faultCode, faultString) as kojixmlrpc reports an exception (no KojiDebug)."""
    if isinstance(e, koji.GenericError):
        return getattr(e, 'faultCode', 1000), str(e)
    return getattr(type(e), 'faultCode', 1), "%s: %s" % (type(e), e)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'hubsim'

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without NODELAY, Nagle + delayed
        # ACK cost ~40 ms per call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # quiet: the call log records what matters
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub  # type: ignore[attr-defined]

    def _environ(self) -> dict:
        parsed = urllib.parse.urlsplit(self.path)
        env = {'REQUEST_METHOD': self.command, 'PATH_INFO': parsed.path,
               'QUERY_STRING': parsed.query, 'REMOTE_ADDR': self.client_address[0],
               'REMOTE_PORT': str(self.client_address[1]),
               'CONTENT_TYPE': self.headers.get('Content-Type', ''),
               'CONTENT_LENGTH': self.headers.get('Content-Length', '')}
        for k, v in self.headers.items():
            env['HTTP_' + k.upper().replace('-', '_')] = v
        return env

    def _send(self, status: int, body: bytes, ctype: str = 'text/xml',
              extra: Optional[list] = None) -> None:
        self.send_response(status)
        self.send_header('Koji-Version', self.hub.koji_version)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for k, v in extra or ():
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def do_POST(self):
        env = self._environ()
        body = self._read_body()
        if not env['PATH_INFO'].startswith('/kojihub'):
            self._send(404, b'Not Found\n', 'text/plain')
            return
        if env['PATH_INFO'].rstrip('/').endswith('/ssllogin'):
            fault = Fault(koji.AuthError.faultCode, 'hubsim: no SSL login over plain http')
            self._send(200, dumps(fault).encode())
            return
        if env['CONTENT_TYPE'] == 'application/octet-stream':
            status, data = self.hub.handle_upload(body, env)
        else:
            if not body:
                self._send(400, b'Empty request\n', 'text/plain')
                return
            status, data = self.hub.handle_rpc(body, env)
        self._send(status, data, 'text/xml' if status == 200 else 'text/plain')

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith('/kojifiles/'):
            self._serve_file(urllib.parse.unquote(path[len('/kojifiles/'):]))
        elif path.startswith('/kojihub'):
            self._send(405, b'Method Not Allowed\nThis is an XML-RPC server. Only POST '
                       b'requests are accepted.\n', 'text/plain', [('Allow', 'POST')])
        else:
            self._send(404, b'Not Found\n', 'text/plain')

    do_HEAD = do_GET

    def _serve_file(self, rel: str) -> None:
        rel = os.path.normpath(rel).lstrip('/')
        fn = os.path.join(self.hub.state.topdir, rel)
        if rel.startswith('..') or not os.path.isfile(fn):
            self._send(404, b'Not Found\n', 'text/plain')
            self.hub._count_file(rel, self.headers.get('Range'), 404, 0)
            return
        size = os.path.getsize(fn)
        rng = self.headers.get('Range')
        start, end, status = 0, size - 1, 200
        if rng and not self.hub.ignore_range:
            m = re.fullmatch(r'bytes=(\d*)-(\d*)', rng.strip())
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:
                    start = max(size - int(m.group(2)), 0)
                if start >= size or start > end:
                    self._send(416, b'', 'text/plain', [('Content-Range', 'bytes */%d' % size)])
                    self.hub._count_file(rel, rng, 416, 0)
                    return
                status = 206
        length = end - start + 1 if size else 0
        self.send_response(status)
        self.send_header('Content-Type', 'application/x-rpm' if fn.endswith('.rpm')
                         else 'application/octet-stream')
        self.send_header('Content-Length', str(length))
        self.send_header('Accept-Ranges', 'none' if self.hub.ignore_range else 'bytes')
        if status == 206:
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, size))
        self.end_headers()
        entry = self.hub._count_file(rel, rng, status, 0)
        sent = 0
        if self.command != 'HEAD':
            try:
                with open(fn, 'rb') as fo:
                    fo.seek(start)
                    while sent < length:
                        chunk = fo.read(min(65536, length - sent))
                        if not chunk:
                            break
                        self.hub._add_bytes(entry, len(chunk))
                        sent += len(chunk)
                        self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True


# ---------------------------------------------------------------------- command line

def _load_state(spec: str, tag: Optional[str]) -> State:
    if os.path.isdir(spec):
        st = State()
        if tag and st.db.tag == {}:
            st.add_tag(tag)
        st.import_dir(spec, tag=tag)
        return st
    if spec.endswith('.json'):
        import json
        with open(spec) as fo:
            return State.from_spec(json.load(fo), base=os.path.dirname(os.path.abspath(spec)))
    return State.load(spec)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog='python -m tests.hubsim.server',
                                 description='Simulated Koji hub (XML-RPC + /kojifiles)')
    ap.add_argument('--state', required=True,
                    help='directory of rpms to import, a JSON scenario or a State.save() pickle')
    ap.add_argument('--tag', help='with a directory: tag imported builds here (created)')
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--user', action='append', default=[],
                    help='NAME[:PASSWORD[:PERM,PERM]] (password login for the koji CLI)')
    ap.add_argument('--builder', action='append', default=[], help='add a builder host')
    ap.add_argument('--plugin', action='append', default=[],
                    help='import this module (dotted name) and load it as a hub plugin')
    ap.add_argument('--no-plugins', action='store_true', help='hide plugin calls')
    ap.add_argument('--ignore-range', action='store_true')
    args = ap.parse_args(argv)
    state = _load_state(args.state, args.tag)
    for spec in args.user:
        name, _, rest = spec.partition(':')
        password, _, perms = rest.partition(':')
        state.add_user(name, [p for p in perms.split(',') if p], password=password or None)
    for name in args.builder:
        state.add_host(name)
    hub = HubServer(state, host=args.host, port=args.port, plugins=not args.no_plugins,
                    ignore_range=args.ignore_range)
    for modname in args.plugin:
        hub.load_plugin(importlib.import_module(modname))
    hub.start()
    print(hub.url, flush=True)
    print(hub.topurl, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        done.wait()
    finally:
        hub.stop()
        state.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
