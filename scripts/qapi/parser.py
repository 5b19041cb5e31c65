"""Reads QAPI schema files: QEMU's syntax, parsed from scratch.

A schema file is a sequence of JSON-like expressions written with single
quotes, separated by '#' comments. A comment block that starts and ends with
a '##' line is a doc comment: it documents the expression that follows it,
or, when its first line is not '@name:', it is free-form text (a section
heading such as '# = Migration') that goes into the reference as is.

The parser returns plain dicts (the expressions) paired with their Doc and
source location; schema.py checks them and builds the type model.
"""

import os
import re


class QAPIError(Exception):
    """An error in a schema file, reported as 'file:line: message'."""

    def __init__(self, info, msg):
        super().__init__(f"{info}: {msg}" if info else msg)


class Info:
    """Where an expression (or a doc comment) comes from."""

    def __init__(self, fname, line):
        self.fname = fname
        self.line = line

    def __str__(self):
        return f"{self.fname}:{self.line}"


class Doc:
    """A parsed '##' doc comment.

    symbol: the name after '@' on the first line, or None for free-form.
    body: the paragraphs before the member descriptions.
    members: {name: text} in source order.
    sections: [(tag, text)] for 'Returns', 'Since', 'Errors', 'Note',
              'Example' (examples keep their indentation verbatim).
    """

    SECTION_TAGS = ('Returns', 'Since', 'Errors', 'Note', 'Notes',
                    'Example', 'Examples')

    def __init__(self, info):
        self.info = info
        self.symbol = None
        self.body = ''
        self.members = {}
        self.sections = []

    def section(self, tag):
        for t, text in self.sections:
            if t == tag:
                return text
        return None


def _dedent_example(lines):
    """Removes the common indentation of an example block."""
    nonblank = [ln for ln in lines if ln.strip()]
    if not nonblank:
        return ''
    cut = min(len(ln) - len(ln.lstrip()) for ln in nonblank)
    out = [ln[cut:] if ln.strip() else '' for ln in lines]
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return '\n'.join(out)


def _join_paragraphs(lines):
    """Joins wrapped lines into paragraphs separated by a blank line."""
    paras, cur = [], []
    for ln in lines:
        if ln.strip():
            cur.append(ln.strip())
        elif cur:
            paras.append(' '.join(cur))
            cur = []
    if cur:
        paras.append(' '.join(cur))
    return '\n\n'.join(paras)


def parse_doc(info, raw_lines):
    """Parses the text lines of a doc comment ('# ' already stripped)."""
    doc = Doc(info)
    lines = list(raw_lines)
    first = lines[0].strip() if lines else ''
    m = re.fullmatch(r'@([A-Za-z0-9_-]+):', first)
    if m:
        doc.symbol = m.group(1)
        lines = lines[1:]
    else:
        # Free-form: kept as written (headings, prose).
        doc.body = '\n'.join(ln.rstrip() for ln in lines).strip('\n')
        return doc

    # Each line belongs to the body, a member, or a section.
    where = ('body', None)
    body, members, sections = [], {}, []
    member_re = re.compile(r'@([A-Za-z0-9_-]+):(.*)')
    section_re = re.compile(r'(%s):(.*)' % '|'.join(Doc.SECTION_TAGS))
    for ln in lines:
        stripped = ln.strip()
        mm = member_re.match(ln)
        sm = section_re.match(ln)
        if mm:
            name = mm.group(1)
            if where[0] == 'section':
                raise QAPIError(info, f"'@{name}:' after a section; member "
                                "descriptions come before Returns/Since/...")
            if name in members:
                raise QAPIError(info, f"'@{name}' documented twice")
            members[name] = [mm.group(2)]
            where = ('member', name)
        elif sm:
            tag = sm.group(1)
            sections.append([tag, [sm.group(2)]])
            where = ('section', len(sections) - 1)
        elif where[0] == 'body':
            body.append(ln)
        elif where[0] == 'member':
            # A blank line ends a member description; text after it that is
            # not indented is more body text for the whole definition.
            if not stripped:
                where = ('after-member', None)
            else:
                members[where[1]].append(ln)
        elif where[0] == 'after-member':
            if stripped and not ln.startswith(' '):
                body.append(ln)
            elif stripped:
                raise QAPIError(info, 'indented text outside a member '
                                'description')
        else:
            sections[where[1]][1].append(ln)
    doc.body = _join_paragraphs(body)
    doc.members = {k: _join_paragraphs(v) for k, v in members.items()}
    for tag, text in sections:
        if tag.startswith('Example'):
            doc.sections.append(('Example', _dedent_example(text)))
        else:
            doc.sections.append((tag.rstrip('s') if tag == 'Notes' else tag,
                                 _join_paragraphs(text)))
    return doc


class SchemaParser:
    """Parses one file, following 'include' directives."""

    def __init__(self, fname, included=None):
        self.fname = fname
        self.included = included if included is not None else set()
        self.included.add(os.path.abspath(fname))
        with open(fname, encoding='utf-8') as f:
            self.src = f.read()
        self.pos = 0
        self.line = 1
        self.pending_doc = None
        # [(kind, payload, info)] where kind is 'expr' (payload = (dict,
        # doc)) or 'freeform' (payload = Doc).
        self.items = []
        self._parse()

    def info(self):
        return Info(self.fname, self.line)

    def error(self, msg):
        raise QAPIError(self.info(), msg)

    # --- lexer --------------------------------------------------------
    def _skip_space_and_comments(self):
        """Skips blanks and comments, collecting '##' doc blocks."""
        while self.pos < len(self.src):
            c = self.src[self.pos]
            if c == '\n':
                self.line += 1
                self.pos += 1
            elif c in ' \t\r':
                self.pos += 1
            elif c == '#':
                if self._at_line_start() and self._rest_of_line() == '##':
                    self._read_doc_block()
                else:
                    self._next_line()
            else:
                return

    def _at_line_start(self):
        start = self.src.rfind('\n', 0, self.pos) + 1
        return self.src[start:self.pos].strip() == ''

    def _rest_of_line(self):
        end = self.src.find('\n', self.pos)
        end = len(self.src) if end < 0 else end
        return self.src[self.pos:end].rstrip()

    def _next_line(self):
        end = self.src.find('\n', self.pos)
        self.pos = len(self.src) if end < 0 else end

    def _read_doc_block(self):
        info = self.info()
        if self.pending_doc is not None:
            self._flush_freeform()
        self._next_line()
        lines = []
        while True:
            if self.pos >= len(self.src):
                raise QAPIError(info, "doc comment not closed with '##'")
            self.pos += 1  # the newline
            self.line += 1
            text = self._rest_of_line()
            stripped = text.strip()
            if stripped == '##':
                self._next_line()
                break
            if not stripped.startswith('#'):
                raise QAPIError(self.info(), "doc comment not closed with "
                                "'##' before this line")
            body = stripped[1:]
            if body and not body.startswith(' '):
                raise QAPIError(self.info(), "doc comment lines start with "
                                "'# '")
            lines.append(body[1:])
            self._next_line()
        doc = parse_doc(info, lines)
        if doc.symbol is None:
            self.items.append(('freeform', doc, info))
        else:
            self.pending_doc = doc

    def _flush_freeform(self):
        doc = self.pending_doc
        raise QAPIError(doc.info, f"doc comment for '@{doc.symbol}' is not "
                        "followed by a definition")

    def _string(self):
        assert self.src[self.pos] == "'"
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(self.src) or self.src[self.pos] == '\n':
                self.error('missing terminating quote')
            c = self.src[self.pos]
            self.pos += 1
            if c == "'":
                return ''.join(out)
            if c == '\\':
                if self.pos >= len(self.src):
                    self.error('missing terminating quote')
                esc = self.src[self.pos]
                self.pos += 1
                if esc not in "\\'\"/":
                    self.error(f"unsupported escape '\\{esc}'")
                c = esc
            out.append(c)

    def _value(self):
        self._skip_space_and_comments()
        if self.pos >= len(self.src):
            self.error('unexpected end of file')
        c = self.src[self.pos]
        if c == "'":
            return self._string()
        if c == '{':
            return self._object()
        if c == '[':
            return self._array()
        for word, val in (('true', True), ('false', False)):
            if self.src.startswith(word, self.pos):
                self.pos += len(word)
                return val
        self.error(f"stray '{c}'")

    def _expect(self, ch):
        self._skip_space_and_comments()
        if self.pos >= len(self.src) or self.src[self.pos] != ch:
            self.error(f"expected '{ch}'")
        self.pos += 1

    def _peek(self):
        self._skip_space_and_comments()
        return self.src[self.pos] if self.pos < len(self.src) else ''

    def _object(self):
        self._expect('{')
        out = {}
        if self._peek() == '}':
            self.pos += 1
            return out
        while True:
            if self._peek() != "'":
                self.error('expected a quoted key')
            key = self._string()
            if key in out:
                self.error(f"duplicate key '{key}'")
            self._expect(':')
            out[key] = self._value()
            c = self._peek()
            self.pos += 1
            if c == '}':
                return out
            if c != ',':
                self.error("expected ',' or '}'")

    def _array(self):
        self._expect('[')
        out = []
        if self._peek() == ']':
            self.pos += 1
            return out
        while True:
            out.append(self._value())
            c = self._peek()
            self.pos += 1
            if c == ']':
                return out
            if c != ',':
                self.error("expected ',' or ']'")

    # --- top level ----------------------------------------------------
    def _parse(self):
        while True:
            self._skip_space_and_comments()
            if self.pos >= len(self.src):
                if self.pending_doc is not None:
                    self._flush_freeform()
                return
            info = self.info()
            if self.src[self.pos] != '{':
                self.error('expected a top-level object')
            expr = self._object()
            doc, self.pending_doc = self.pending_doc, None
            if 'include' in expr:
                if doc is not None:
                    raise QAPIError(info, 'include cannot be documented')
                self._include(info, expr)
                continue
            if 'pragma' in expr:
                continue
            self.items.append(('expr', (expr, doc), info))

    def _include(self, info, expr):
        if len(expr) != 1 or not isinstance(expr['include'], str):
            raise QAPIError(info, "invalid 'include' directive")
        path = os.path.join(os.path.dirname(self.fname), expr['include'])
        if os.path.abspath(path) in self.included:
            return  # each file once
        if not os.path.exists(path):
            raise QAPIError(info, f"can't read include file '{path}'")
        sub = SchemaParser(path, self.included)
        self.items.append(('file', path, info))
        self.items.extend(sub.items)


def parse_schema(fname):
    """Returns [(kind, payload, info)] for fname and everything it includes.

    Also returns the list of files read (for build dependencies).
    """
    p = SchemaParser(fname)
    return p.items, sorted(p.included)
