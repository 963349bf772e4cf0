"""Stand-in for ``kojihub.db``: query/update/insert single in-memory tables.

Supported: ``QueryProcessor(columns, aliases, tables=[one table], clauses, values,
transform, opts)`` with clauses ``col = %(v)s|i|d`` (also ``!=, <, >, <=, >=``),
``col IN %(v)s``, ``col IS [NOT] NULL|TRUE|FALSE``, ``col = TRUE|FALSE`` and
``active = TRUE`` (``table.`` prefixes allowed); ``UpdateProcessor`` (``set``,
``rawset`` with ``NOW()``/``NULL``, ``make_revoke``) and ``InsertProcessor``
(``make_create``) on the same tables; ``Savepoint`` (no-op), ``get_event``,
``nextval``, ``_applyQueryOpts``, ``convert_timestamp``.  Joins, SQL expressions
and raw SQL raise NotImplementedError: a plugin needing them needs a real hub test.
Signatures as kojihub/db.py at 2083513aab6ed193215efebb21823d905e02f339.
"""

from __future__ import annotations

import datetime
import operator
import re

import koji
from koji.context import context

from . import _core

_applyQueryOpts = _core._applyQueryOpts

_OPS = {'=': operator.eq, '!=': operator.ne, '<>': operator.ne, '<': operator.lt,
        '>': operator.gt, '<=': operator.le, '>=': operator.ge}
_RE_CMP = re.compile(r'^\s*(?:\w+\.)?(\w+)\s*(=|!=|<>|<=|>=|<|>)\s*%\((\w+)\)[sid]\s*$')
_RE_IN = re.compile(r'^\s*(?:\w+\.)?(\w+)\s+(NOT\s+)?IN\s+%\((\w+)\)s\s*$', re.I)
_RE_IS = re.compile(r'^\s*(?:\w+\.)?(\w+)\s+IS\s+(NOT\s+)?(NULL|TRUE|FALSE)\s*$', re.I)
_RE_BOOL = re.compile(r'^\s*(?:\w+\.)?(\w+)\s*=\s*(TRUE|FALSE)\s*$', re.I)


def _now():
    return datetime.datetime.fromtimestamp(_core.current_state().clock(),
                                           datetime.timezone.utc)


def _rows(table):
    db = _core.current_state().db
    data = getattr(db, table, None)
    if data is None or table.startswith('_'):
        raise NotImplementedError('hubsim db: unknown table %s' % table)
    return data


def _iter_rows(table):
    data = _rows(table)
    return list(data.values()) if isinstance(data, dict) else list(data)


def _col(name):
    name = name.strip()
    if not re.fullmatch(r'(?:\w+\.)?\w+', name):
        raise NotImplementedError('hubsim db: column expression %r' % name)
    return name.split('.')[-1]


def _predicate(clause, values):
    m = _RE_CMP.match(clause)
    if m:
        col, op, key = m.groups()
        return lambda r: r.get(col) is not None and _OPS[op](r.get(col), values[key])
    m = _RE_IN.match(clause)
    if m:
        col, neg, key = m.groups()
        return lambda r: (r.get(col) in tuple(values[key])) != bool(neg)
    m = _RE_IS.match(clause)
    if m:
        col, neg, what = m.groups()
        want = {'NULL': None, 'TRUE': True, 'FALSE': False}[what.upper()]
        if want is None:
            return lambda r: (r.get(col) is None) != bool(neg)
        return lambda r: (r.get(col) is want or r.get(col) == want) != bool(neg)
    m = _RE_BOOL.match(clause)
    if m:
        col, what = m.groups()
        want = what.upper() == 'TRUE'
        return lambda r: bool(r.get(col)) == want
    raise NotImplementedError('hubsim db: clause %r' % clause)


def _match(table, clauses, values):
    preds = [_predicate(c, values or {}) for c in clauses or ()]
    return [r for r in _iter_rows(table) if all(p(r) for p in preds)]


def _after_write(table):
    context.commit_pending = True
    db = _core.current_state().db
    if table == 'build':
        db.build_nvr = {(db.package[r['pkg_id']]['name'], r['version'], r['release']): r['id']
                        for r in db.build.values()}
    elif table == 'tag_listing':
        db.tag_listing_by_tag = {}
        for r in db.tag_listing:
            db.tag_listing_by_tag.setdefault(r['tag_id'], []).append(r)


def _raw(value):
    v = value.strip().upper()
    if v in ('NOW()', "'NOW'"):
        return _now()
    if v == 'NULL':
        return None
    raise NotImplementedError('hubsim db: raw SQL %r' % value)


def convert_timestamp(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(' ')


def get_event():
    """One event per call (cached in context like the real one)."""
    return _core._event()


def nextval(sequence):
    return _core.current_state().nextval(re.sub(r'_id_seq$', '', sequence))


def currval(sequence):
    return _core.current_state().db.seq.get(re.sub(r'_id_seq$', '', sequence), 0)


class Savepoint:
    """No-op: hubsim rolls back whole calls (server) or not at all (in-process)."""

    def __init__(self, name):
        self.name = name

    def rollback(self):
        pass


class QueryProcessor:
    def __init__(self, columns=None, aliases=None, tables=None,
                 joins=None, clauses=None, values=None, transform=None,
                 opts=None, enable_group=False, order_map=None):
        if joins:
            raise NotImplementedError('hubsim db: joins are not supported')
        if not tables or len(tables) != 1:
            raise NotImplementedError('hubsim db: exactly one table is supported')
        self.table = tables[0]
        self.columns = [_col(c) for c in (columns or [])]
        self.aliases = list(aliases) if aliases else list(self.columns)
        self.clauses = list(clauses or [])
        self.values = dict(values or {})
        self.transform = transform
        self.opts = dict(opts or {})

    def countOnly(self, count):
        self.opts['countOnly'] = count

    def _rows(self):
        rows = _match(self.table, self.clauses, self.values)
        out = [{a: r.get(c) for c, a in zip(self.columns, self.aliases)} for r in rows]
        if self.transform is not None:
            out = [self.transform(r) for r in out]
        return out

    def execute(self):
        rows = self._rows()
        if self.opts.get('countOnly'):
            return len(rows)
        opts = dict(self.opts)
        as_list = opts.pop('asList', False)
        rows = _core._apply_query_opts(rows, opts, as_list_ok=False)
        if as_list:
            order = sorted(self.aliases)
            rows = [[r[a] for a in order] for r in rows]
        return rows

    def iterate(self):
        result = self.execute()
        return result if isinstance(result, int) else _core._gen(result)

    def executeOne(self, strict=False):
        results = self.execute()
        if isinstance(results, list):
            if results:
                if strict and len(results) > 1:
                    raise koji.GenericError('multiple rows returned for a single row query')
                return results[0]
            if strict:
                raise koji.GenericError('query returned no rows')
            return None
        return results

    def singleValue(self, strict=True):
        rows = _match(self.table, self.clauses, self.values)
        if not rows:
            if strict:
                raise koji.GenericError('query returned no rows')
            return None
        if strict and len(rows) > 1:
            raise koji.GenericError('multiple rows returned for a single row query')
        return rows[0].get(self.columns[0])


class UpdateProcessor:
    def __init__(self, table, data=None, rawdata=None, clauses=None, values=None):
        self.table = table
        self.data = dict(data or {})
        self.rawdata = dict(rawdata or {})
        self.clauses = list(clauses or [])
        self.values = dict(values or {})

    def set(self, **kwargs):
        self.data.update(kwargs)

    def rawset(self, **kwargs):
        self.rawdata.update(kwargs)

    def make_revoke(self, event_id=None, user_id=None):
        if event_id is None:
            event_id = get_event()
        if user_id is None:
            context.session.assertLogin()
            user_id = context.session.user_id
        self.data['revoke_event'] = event_id
        self.data['revoker_id'] = user_id
        self.rawdata['active'] = 'NULL'
        self.clauses.append('active = TRUE')

    def execute(self):
        changes = dict(self.data)
        changes.update({k: _raw(v) for k, v in self.rawdata.items()})
        rows = _match(self.table, self.clauses, self.values)
        for r in rows:
            r.update(changes)
        _after_write(self.table)
        return len(rows)


class InsertProcessor:
    def __init__(self, table, data=None, rawdata=None):
        self.table = table
        self.data = dict(data or {})
        self.rawdata = dict(rawdata or {})

    def set(self, **kwargs):
        self.data.update(kwargs)

    def rawset(self, **kwargs):
        self.rawdata.update(kwargs)

    def make_create(self, event_id=None, user_id=None):
        if event_id is None:
            event_id = get_event()
        if user_id is None:
            context.session.assertLogin()
            user_id = context.session.user_id
        self.data['create_event'] = event_id
        self.data['creator_id'] = user_id

    def execute(self):
        row = dict(self.data)
        row.update({k: _raw(v) for k, v in self.rawdata.items()})
        target = _rows(self.table)
        if isinstance(target, dict):
            row.setdefault('id', nextval(self.table))
            target[row['id']] = row
        else:
            if 'create_event' in row:
                row.setdefault('revoke_event', None)
                row.setdefault('revoker_id', None)
                row.setdefault('active', True)
            target.append(row)
        _after_write(self.table)
        return 1
