"""The checked type model of a QAPI schema.

schema.py turns the parser's expressions into typed objects (enums,
structs, unions, lists, commands, events), resolves every type name and
checks what the C generator relies on: known types, documented members,
discriminators that are enum members of the base, unique C names.
"""

import re

from .parser import QAPIError, parse_schema

# C identifiers that cannot be used as member names: keywords, and
# the macros gcc predefines in GNU mode ('unix', 'linux').
C_RESERVED = set('''
auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed
sizeof static struct switch typedef union unsigned void volatile while
_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn
_Static_assert _Thread_local bool true false unix linux errno
'''.split())


def c_name(name, protect=True):
    """A QAPI name as a C identifier: '-' and '.' become '_'."""
    out = re.sub(r'[^A-Za-z0-9_]', '_', name)
    if protect and out in C_RESERVED:
        return 'q_' + out
    return out


def camel_to_upper(name):
    """CamelCase type name -> UPPER_SNAKE enum prefix (RunState -> RUN_STATE,
    QMPCapability -> QMP_CAPABILITY)."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0:
            prev = name[i - 1]
            nxt = name[i + 1] if i + 1 < len(name) else ''
            if prev.islower() or prev.isdigit() or \
               (prev.isupper() and nxt.islower()):
                out.append('_')
        out.append(ch)
    return c_name(''.join(out), False).upper()


class Type:
    """Base of every type. json_kind is the word used in error messages."""
    is_builtin = False
    doc = None
    info = None

    def c_type(self):
        raise NotImplementedError

    def is_pointer(self):
        """True when the C value is a pointer (NULL when an optional member
        is absent) rather than a scalar with a has_ flag."""
        return False


class Builtin(Type):
    is_builtin = True

    # name: (C type, json kind, min, max)
    TABLE = {
        'str': ('char *', 'string', None, None),
        'int': ('int64_t', 'integer', 'INT64_MIN', 'INT64_MAX'),
        'int8': ('int8_t', 'integer', 'INT8_MIN', 'INT8_MAX'),
        'int16': ('int16_t', 'integer', 'INT16_MIN', 'INT16_MAX'),
        'int32': ('int32_t', 'integer', 'INT32_MIN', 'INT32_MAX'),
        'int64': ('int64_t', 'integer', 'INT64_MIN', 'INT64_MAX'),
        'uint8': ('uint8_t', 'integer', '0', 'UINT8_MAX'),
        'uint16': ('uint16_t', 'integer', '0', 'UINT16_MAX'),
        'uint32': ('uint32_t', 'integer', '0', 'UINT32_MAX'),
        'uint64': ('uint64_t', 'integer', '0', 'UINT64_MAX'),
        'size': ('uint64_t', 'integer', '0', 'UINT64_MAX'),
        'bool': ('bool', 'boolean', None, None),
        'number': ('double', 'number', None, None),
        'any': ('JsonNode *', 'value', None, None),
    }

    def __init__(self, name):
        self.name = name
        self._c, self.json_kind, self.min, self.max = Builtin.TABLE[name]

    def c_type(self):
        return self._c

    def c_name(self):
        return self.name

    def is_pointer(self):
        return self.name in ('str', 'any')

    def is_signed_int(self):
        return self.name.startswith('int')

    def is_unsigned_int(self):
        return self.name.startswith('uint') or self.name == 'size'


class EnumValue:
    def __init__(self, name, aliases):
        self.name = name
        self.aliases = aliases


class Enum(Type):
    json_kind = 'string'

    def __init__(self, name, values, prefix, doc, info):
        self.name = name
        self.values = values
        self.prefix = prefix or camel_to_upper(name)
        self.doc = doc
        self.info = info

    def c_type(self):
        return self.name

    def c_name(self):
        return self.name

    def c_value(self, value_name):
        return f'{self.prefix}_{c_name(value_name, False).upper()}'


class Member:
    def __init__(self, name, type_name, optional, info):
        self.name = name
        self.type_name = type_name
        self.type = None
        self.optional = optional
        self.info = info

    def c_name(self):
        return c_name(self.name)


class ObjectType(Type):
    """A struct, or a flat union. Members are the flattened ones."""
    json_kind = 'object'

    def __init__(self, name, doc, info, implicit=False):
        self.name = name
        self.doc = doc
        self.info = info
        self.implicit = implicit
        self.base_name = None
        self.base = None
        self.local_members = []

    def c_type(self):
        return self.name + ' *'

    def c_name(self):
        return self.name

    def is_pointer(self):
        return True

    def members(self):
        """Every member, the base's first (as the C struct lays them out)."""
        base = self.base.members() if self.base else []
        return base + self.local_members


class Struct(ObjectType):
    kind = 'struct'


class Union(ObjectType):
    kind = 'union'

    def __init__(self, name, doc, info):
        super().__init__(name, doc, info)
        self.discriminator = None    # the Member
        self.branch_names = {}       # enum value -> type name
        self.branches = []           # [(EnumValue, ObjectType)] in enum order


class ListType(Type):
    json_kind = 'array'

    def __init__(self, element):
        self.element = element
        self.name = element.name + 'List'

    def c_type(self):
        return self.name + ' *'

    def c_name(self):
        return self.name

    def is_pointer(self):
        return True


class Command:
    def __init__(self, name, doc, info):
        self.name = name
        self.doc = doc
        self.info = info
        self.arg_type = None   # ObjectType or None
        self.boxed = False
        self.ret_type = None

    def c_name(self):
        return c_name(self.name, False)


class Event:
    def __init__(self, name, doc, info):
        self.name = name
        self.doc = doc
        self.info = info
        self.arg_type = None
        self.boxed = False

    def c_name(self):
        return c_name(self.name, False).lower()


class Schema:
    """Everything in the schema, in source order, with names resolved."""

    def __init__(self, fname):
        items, self.files = parse_schema(fname)
        self.types = {n: Builtin(n) for n in Builtin.TABLE}
        self.entities = []      # enums, structs, unions, commands, events
        self.commands = []
        self.events = []
        self.doc_items = []     # ('freeform', doc) | ('entity', entity)
        self.lists = {}         # name -> ListType, for types actually used
        for kind, payload, info in items:
            if kind == 'freeform':
                self.doc_items.append(('freeform', payload))
            elif kind == 'expr':
                self._define(payload[0], payload[1], info)
        self._resolve()
        self._check_docs()

    # --- definitions --------------------------------------------------
    def _add_type(self, t, info):
        if t.name in self.types:
            raise QAPIError(info, f"'{t.name}' is already defined")
        self.types[t.name] = t

    def _define(self, expr, doc, info):
        meta = [k for k in ('enum', 'struct', 'union', 'command', 'event')
                if k in expr]
        if len(meta) != 1:
            raise QAPIError(info, 'expression must have exactly one of '
                            "'enum', 'struct', 'union', 'command', 'event'")
        kind = meta[0]
        name = expr[kind]
        if not isinstance(name, str) or \
           not re.fullmatch(r'[A-Za-z][A-Za-z0-9_-]*', name):
            raise QAPIError(info, f"invalid {kind} name {name!r}")
        if doc is None:
            raise QAPIError(info, f"{kind} '{name}' has no doc comment")
        if doc.symbol != name:
            raise QAPIError(info, f"doc comment is for '{doc.symbol}', "
                            f"not '{name}'")
        allowed = {
            'enum': {'enum', 'data', 'prefix'},
            'struct': {'struct', 'data', 'base'},
            'union': {'union', 'base', 'discriminator', 'data'},
            'command': {'command', 'data', 'returns', 'boxed'},
            'event': {'event', 'data', 'boxed'},
        }[kind]
        for key in expr:
            if key not in allowed:
                raise QAPIError(info, f"{kind} '{name}' has unknown key "
                                f"'{key}'")
        ent = getattr(self, '_define_' + kind)(name, expr, doc, info)
        self.entities.append(ent)
        self.doc_items.append(('entity', ent))

    def _define_enum(self, name, expr, doc, info):
        values = []
        for v in expr.get('data', []):
            if isinstance(v, str):
                values.append(EnumValue(v, []))
            elif isinstance(v, dict) and isinstance(v.get('name'), str) \
                    and set(v) <= {'name', 'aliases'}:
                aliases = v.get('aliases', [])
                if not isinstance(aliases, list) or \
                   not all(isinstance(a, str) for a in aliases):
                    raise QAPIError(info, f"enum '{name}': 'aliases' must "
                                    "be a list of strings")
                values.append(EnumValue(v['name'], aliases))
            else:
                raise QAPIError(info, f"enum '{name}': invalid value {v!r}")
        seen = set()
        for v in values:
            for word in [v.name] + v.aliases:
                if word in seen:
                    raise QAPIError(info, f"enum '{name}': '{word}' is used "
                                    "twice")
                seen.add(word)
        prefix = expr.get('prefix')
        if prefix is not None and not isinstance(prefix, str):
            raise QAPIError(info, f"enum '{name}': 'prefix' must be a string")
        t = Enum(name, values, prefix, doc, info)
        self._add_type(t, info)
        return t

    def _members(self, owner, data, info):
        if not isinstance(data, dict):
            raise QAPIError(info, f"'{owner}': 'data' must be an object")
        out = []
        for key, tname in data.items():
            optional = key.startswith('*')
            mname = key[1:] if optional else key
            if not re.fullmatch(r'[a-z][a-z0-9_-]*', mname):
                raise QAPIError(info, f"'{owner}': invalid member name "
                                f"'{mname}'")
            out.append(Member(mname, tname, optional, info))
        return out

    def _define_struct(self, name, expr, doc, info):
        t = Struct(name, doc, info)
        t.base_name = expr.get('base')
        t.local_members = self._members(name, expr.get('data', {}), info)
        self._add_type(t, info)
        return t

    def _define_union(self, name, expr, doc, info):
        t = Union(name, doc, info)
        base = expr.get('base')
        if isinstance(base, dict):
            implicit = Struct(f'q_obj_{name}_base', doc, info, implicit=True)
            implicit.local_members = self._members(name, base, info)
            self._add_type(implicit, info)
            t.base_name = implicit.name
        elif isinstance(base, str):
            t.base_name = base
        else:
            raise QAPIError(info, f"union '{name}' needs a 'base'")
        disc = expr.get('discriminator')
        if not isinstance(disc, str):
            raise QAPIError(info, f"union '{name}' needs a 'discriminator'")
        t.discriminator = disc
        data = expr.get('data', {})
        if not isinstance(data, dict) or \
           not all(isinstance(v, str) for v in data.values()):
            raise QAPIError(info, f"union '{name}': 'data' must map enum "
                            "values to type names")
        t.branch_names = dict(data)
        self._add_type(t, info)
        return t

    def _implicit_args(self, owner, cname, expr, info, doc):
        """'data' of a command/event: inline members become an implicit
        struct; a type name is used as is."""
        data = expr.get('data')
        boxed = expr.get('boxed', False)
        if data is None:
            if boxed:
                raise QAPIError(info, f"'{owner}': 'boxed' needs 'data'")
            return None, False
        if isinstance(data, str):
            return data, boxed
        if boxed:
            raise QAPIError(info, f"'{owner}': 'boxed' needs a type name")
        t = Struct(f'q_obj_{cname}_arg', doc, info, implicit=True)
        t.local_members = self._members(owner, data, info)
        self._add_type(t, info)
        return t.name, False

    def _define_command(self, name, expr, doc, info):
        c = Command(name, doc, info)
        c.arg_name, c.boxed = self._implicit_args(name, c_name(name, False),
                                                  expr, info, doc)
        c.ret_name = expr.get('returns')
        self.commands.append(c)
        return c

    def _define_event(self, name, expr, doc, info):
        e = Event(name, doc, info)
        e.arg_name, e.boxed = self._implicit_args(name, name, expr, info, doc)
        self.events.append(e)
        return e

    # --- resolution ---------------------------------------------------
    def lookup(self, tname, info, what):
        """Type of a name or a one-element list ['T']."""
        if isinstance(tname, list):
            if len(tname) != 1 or not isinstance(tname[0], str):
                raise QAPIError(info, f"{what}: array type must be ['T']")
            elem = self.lookup(tname[0], info, what)
            lname = elem.name + 'List'
            if lname not in self.lists:
                self.lists[lname] = ListType(elem)
            return self.lists[lname]
        if not isinstance(tname, str) or tname not in self.types:
            raise QAPIError(info, f"{what} uses unknown type {tname!r}")
        return self.types[tname]

    def _object_type(self, tname, info, what):
        t = self.lookup(tname, info, what)
        if not isinstance(t, ObjectType):
            raise QAPIError(info, f"{what}: '{tname}' is not a struct or "
                            "union")
        return t

    def _resolve(self):
        objects = [t for t in self.types.values() if isinstance(t, ObjectType)]
        for t in objects:
            for m in t.local_members:
                m.type = self.lookup(m.type_name, m.info,
                                     f"'{t.name}' member '{m.name}'")
            if t.base_name:
                t.base = self._object_type(t.base_name, t.info,
                                           f"'{t.name}' base")
                if isinstance(t.base, Union):
                    raise QAPIError(t.info, f"'{t.name}': base must be a "
                                    "struct")
        for t in objects:
            self._check_base_cycle(t)
            seen = set()
            for m in t.members():
                if m.c_name() in seen or m.c_name() == 'u':
                    raise QAPIError(t.info, f"'{t.name}': member '{m.name}' "
                                    "clashes with another member")
                seen.add(m.c_name())
        for t in objects:
            if isinstance(t, Union):
                self._resolve_union(t)
        self._check_embedding_cycles(objects)
        for c in self.commands:
            c.arg_type = self._object_type(c.arg_name, c.info, c.name) \
                if c.arg_name else None
            if c.ret_name is not None:
                c.ret_type = self.lookup(c.ret_name, c.info,
                                         f"'{c.name}' returns")
        for e in self.events:
            e.arg_type = self._object_type(e.arg_name, e.info, e.name) \
                if e.arg_name else None
            if e.arg_type and isinstance(e.arg_type, Union) and not e.boxed:
                raise QAPIError(e.info, f"'{e.name}': a union needs 'boxed'")
        for c in self.commands:
            if c.arg_type and isinstance(c.arg_type, Union) and not c.boxed:
                raise QAPIError(c.info, f"'{c.name}': a union needs 'boxed'")

    def _check_base_cycle(self, t):
        seen = set()
        while t:
            if t.name in seen:
                raise QAPIError(t.info, f"'{t.name}' is its own base")
            seen.add(t.name)
            t = t.base

    def _resolve_union(self, t):
        disc = [m for m in t.members() if m.name == t.discriminator]
        if not disc:
            raise QAPIError(t.info, f"union '{t.name}': discriminator "
                            f"'{t.discriminator}' is not a base member")
        d = disc[0]
        if not isinstance(d.type, Enum) or d.optional:
            raise QAPIError(t.info, f"union '{t.name}': discriminator must "
                            "be a required enum member")
        t.discriminator = d
        names = {v.name: v for v in d.type.values}
        for value, tname in t.branch_names.items():
            if value not in names:
                raise QAPIError(t.info, f"union '{t.name}': '{value}' is "
                                f"not a value of '{d.type.name}'")
            bt = self._object_type(tname, t.info,
                                   f"union '{t.name}' branch '{value}'")
            clash = {m.c_name() for m in bt.members()} & \
                {m.c_name() for m in t.members()}
            if clash:
                raise QAPIError(t.info, f"union '{t.name}' branch "
                                f"'{value}': members {sorted(clash)} clash "
                                "with the base")
        t.branches = [(v, self.types[t.branch_names[v.name]])
                      for v in d.type.values if v.name in t.branch_names]

    def _check_embedding_cycles(self, objects):
        # Branches are embedded by value: a cycle would be infinite.
        def visit(t, stack):
            if t.name in stack:
                raise QAPIError(t.info, f"'{t.name}' contains itself")
            if isinstance(t, Union):
                for _, bt in t.branches:
                    visit(bt, stack | {t.name})
        for t in objects:
            visit(t, frozenset())

    # --- documentation ------------------------------------------------
    def _check_docs(self):
        for ent in self.entities:
            doc = ent.doc
            if isinstance(ent, Enum):
                expected = [v.name for v in ent.values]
            elif isinstance(ent, ObjectType):
                expected = [m.name for m in ent.local_members]
                if ent.base and ent.base.implicit:
                    expected = [m.name for m in ent.base.local_members] + \
                        expected
            else:
                expected = [m.name for m in ent.arg_type.local_members] \
                    if ent.arg_type and ent.arg_type.implicit else []
            for name in expected:
                if name not in doc.members:
                    raise QAPIError(doc.info, f"'{ent.name}': member "
                                    f"'{name}' is not documented")
            for name in doc.members:
                if name not in expected:
                    raise QAPIError(doc.info, f"'{ent.name}': documented "
                                    f"member '{name}' does not exist")
            if not doc.body:
                raise QAPIError(doc.info, f"'{ent.name}' has no description")

    # --- helpers for generators ---------------------------------------
    def objects_in_order(self):
        """Structs and unions so that every embedded (branch) type comes
        before the union embedding it."""
        done, out = set(), []

        def emit(t):
            if t.name in done:
                return
            done.add(t.name)
            if isinstance(t, Union):
                for _, bt in t.branches:
                    emit(bt)
            out.append(t)
        for t in self.types.values():
            if isinstance(t, ObjectType):
                emit(t)
        return out

    def enums(self):
        return [t for t in self.types.values() if isinstance(t, Enum)]
