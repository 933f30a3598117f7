"""CloudWatch Logs filter patterns, compiled to a predicate over one event's message. Pure.

https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html — the forms supported:

- the empty pattern: every event;
- terms (unstructured events; matches are case-sensitive): ``ERROR`` (contains the term), ``ERROR Exception``
  (all of them), ``"Internal Server Error"`` (an exact phrase: a term with anything but letters and digits must
  be quoted), ``?ERROR ?WARN`` (any of them), ``ERROR -ARGUMENTS`` (ERROR without ARGUMENTS);
- regular expressions between ``%`` (``%ERROR [0-9]{3}%``; AWS's subset, evaluated with Python's ``re``);
- JSON patterns ``{ SELECTOR OP VALUE }`` on events whose message is a JSON object: selectors ``$.a.b``,
  ``$.list[0]``; ``=`` / ``!=`` with strings (``*`` is a wildcard, quotes optional for plain words) or
  numbers, ``<``, ``<=``, ``>``, ``>=`` with numbers; ``IS TRUE``, ``IS FALSE``, ``IS NULL``, ``NOT EXISTS``;
  ``&&``, ``||`` and parentheses;
- space-delimited patterns ``[ip, user, ..., status = 4*, size > 1000]``: one field per space-separated word
  of the message (``"quoted words"`` and ``[bracketed words]`` count as one), ``...`` for any number of words,
  conditions as in JSON patterns (``&&`` / ``||`` inside one field).

Anything else raises :class:`PatternError` with the reason (the API answers ``InvalidParameterException``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["Matcher", "PatternError", "compile_pattern"]

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """The filter pattern cannot be parsed."""


def compile_pattern(pattern: str | None) -> Matcher:
    """A predicate over a message for ``pattern`` (None or blank: everything)."""
    text = (pattern or "").strip()
    if not text:
        return _always
    if text.startswith("{"):
        if not text.endswith("}"):
            raise PatternError("Invalid filter pattern: a JSON pattern must end with '}'")
        return _json_matcher(_Parser(_tokens(text[1:-1])).expression_end())
    if text.startswith("["):
        if not text.endswith("]"):
            raise PatternError("Invalid filter pattern: a space-delimited pattern must end with ']'")
        return _delimited_matcher(text[1:-1])
    if len(text) >= 2 and text.startswith("%") and text.endswith("%"):
        try:
            regex = re.compile(text[1:-1])
        except re.error as exc:
            raise PatternError(f"Invalid filter pattern: bad regular expression: {exc}") from None
        return lambda message: regex.search(message) is not None
    return _terms_matcher(text)


def _always(message: str) -> bool:
    return True


# -- terms ----------------------------------------------------------------------------------------------


_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')


def _terms_matcher(text: str) -> Matcher:
    required: list[str] = []
    optional: list[str] = []
    excluded: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = _TERM.match(text, pos)
        if m is None:
            raise PatternError(f"Invalid filter pattern: unterminated quote at position {pos}")
        sign, quoted, bare = m.group(1), m.group(2), m.group(3)
        term = quoted.replace('\\"', '"') if quoted is not None else bare
        if bare is not None and '"' in bare:
            raise PatternError(f"Invalid filter pattern: stray quote in {bare!r}")
        if not term:
            raise PatternError("Invalid filter pattern: empty term")
        {"": required, "?": optional, "-": excluded}[sign].append(term)
        pos = m.end()

    def match(message: str) -> bool:
        if any(t not in message for t in required) or any(t in message for t in excluded):
            return False
        return not optional or any(t in message for t in optional)

    return match


# -- the expression language of JSON and space-delimited patterns ----------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\))|(?P<str>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()=!<>&|"]+))""")

Node = tuple[Any, ...]  # ("or", a, b) | ("and", a, b) | ("cmp", selector, op, value) | ("is", selector, what)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise PatternError(f"Invalid filter pattern: unexpected {text[pos:].strip()[:20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise PatternError("Invalid filter pattern: it ends too early")
        self.pos += 1
        return tok

    def expression_end(self) -> Node:
        node = self.expression()
        if self.peek() is not None:
            raise PatternError(f"Invalid filter pattern: unexpected {self.peek()[1]!r}")  # type: ignore[index]  # checked
        return node

    def expression(self) -> Node:
        node = self.conjunction()
        while self.peek() == ("op", "||"):
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.primary()
        while self.peek() == ("op", "&&"):
            self.take()
            node = ("and", node, self.primary())
        return node

    def primary(self) -> Node:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            node = self.expression()
            if self.take() != ("op", ")"):
                raise PatternError("Invalid filter pattern: missing ')'")
            return node
        if kind != "word":
            raise PatternError(f"Invalid filter pattern: expected a selector, got {value!r}")
        return self.condition(value)

    def condition(self, selector: str) -> Node:
        kind, value = self.take()
        if kind == "word" and value.upper() in ("IS", "NOT"):
            _, what = self.take()
            what = what.upper()
            if value.upper() == "NOT" and what == "EXISTS":
                return ("is", selector, "NOT EXISTS")
            if value.upper() == "IS" and what in ("TRUE", "FALSE", "NULL"):
                return ("is", selector, what)
            raise PatternError(f"Invalid filter pattern: {value} {what} is not a condition")
        if kind != "op" or value not in ("=", "!=", "<", "<=", ">", ">="):
            raise PatternError(f"Invalid filter pattern: expected a comparison after {selector}, got {value!r}")
        vkind, raw = self.take()
        if vkind == "op":
            raise PatternError(f"Invalid filter pattern: expected a value after {selector} {value}")
        literal: Any = raw[1:-1].replace('\\"', '"') if vkind == "str" else _number_or_word(raw)
        if value in ("<", "<=", ">", ">=") and not isinstance(literal, float):
            raise PatternError(f"Invalid filter pattern: {selector} {value} needs a number, got {raw}")
        return ("cmp", selector, value, literal)


def _number_or_word(raw: str) -> float | str:
    try:
        return float(raw)
    except ValueError:
        return raw


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_MISSING = object()


def _compare(actual: Any, op: str, literal: Any) -> bool:
    if actual is _MISSING:
        return False
    if isinstance(literal, float):
        number = _number(actual)
        if number is None:
            return op == "!="
        return {"=": number == literal, "!=": number != literal, "<": number < literal, "<=": number <= literal,
                ">": number > literal, ">=": number >= literal}[op]
    if isinstance(actual, bool) or actual is None or isinstance(actual, dict | list):
        text = orjson.dumps(actual).decode()
    else:
        text = str(actual)
    hit = fnmatch.fnmatchcase(text, literal) if "*" in literal else text == literal
    return hit if op == "=" else not hit


def _evaluate(node: Node, lookup: Callable[[str], Any]) -> bool:
    kind = node[0]
    if kind == "or":
        return _evaluate(node[1], lookup) or _evaluate(node[2], lookup)
    if kind == "and":
        return _evaluate(node[1], lookup) and _evaluate(node[2], lookup)
    if kind == "is":
        actual = lookup(node[1])
        return {"NOT EXISTS": actual is _MISSING, "TRUE": actual is True, "FALSE": actual is False,
                "NULL": actual is None}[node[2]]
    return _compare(lookup(node[1]), node[2], node[3])


# -- JSON ----------------------------------------------------------------------------------------------


_STEP = re.compile(r"\.([A-Za-z0-9_@$-]+)|\[(\d+)\]")


def _selector_path(selector: str) -> list[str | int]:
    if not selector.startswith("$"):
        raise PatternError(f"Invalid filter pattern: a JSON selector starts with '$', got {selector!r}")
    path: list[str | int] = []
    pos = 1
    while pos < len(selector):
        m = _STEP.match(selector, pos)
        if m is None:
            raise PatternError(f"Invalid filter pattern: bad selector {selector!r}")
        path.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return path


def _json_matcher(tree: Node) -> Matcher:
    paths: dict[str, list[str | int]] = {}

    def collect(node: Node) -> None:
        if node[0] in ("or", "and"):
            collect(node[1])
            collect(node[2])
        else:
            paths[node[1]] = _selector_path(node[1])

    collect(tree)

    def match(message: str) -> bool:
        text = message.strip()
        if not text.startswith("{"):
            return False
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False

        def lookup(selector: str) -> Any:
            value: Any = doc
            for step in paths[selector]:
                if isinstance(step, int):
                    if not isinstance(value, list) or step >= len(value):
                        return _MISSING
                    value = value[step]
                elif isinstance(value, dict) and step in value:
                    value = value[step]
                else:
                    return _MISSING
            return value

        return _evaluate(tree, lookup)

    return match


# -- space-delimited -------------------------------------------------------------------------------------


_WORD = re.compile(r'"[^"]*"|\[[^\]]*\]|\S+')


def _delimited_matcher(body: str) -> Matcher:
    fields: list[tuple[str, Node | None]] = []  # (name or "...", condition)
    for raw in _split_fields(body):
        field = raw.strip()
        if not field:
            raise PatternError("Invalid filter pattern: empty field in a space-delimited pattern")
        if field == "...":
            fields.append(("...", None))
            continue
        tokens = _tokens(field)
        if len(tokens) == 1 and tokens[0][0] == "word":
            fields.append((tokens[0][1], None))
            continue
        parser = _Parser(tokens)
        node = parser.expression_end()
        names = _names(node)
        if len(names) != 1:
            raise PatternError(f"Invalid filter pattern: a field's conditions must name one field, got {field!r}")
        fields.append((names.pop(), node))

    def match(message: str) -> bool:
        words = [w[1:-1] if w[0] in '"[' and len(w) > 1 else w for w in _WORD.findall(message)]
        return _match_fields(fields, 0, words, 0)

    return match


def _split_fields(body: str) -> list[str]:
    out: list[str] = []
    depth_quote = False
    current = ""
    for ch in body:
        if ch == '"':
            depth_quote = not depth_quote
        if ch == "," and not depth_quote:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return out


def _names(node: Node) -> set[str]:
    if node[0] in ("or", "and"):
        return _names(node[1]) | _names(node[2])
    return {node[1]}


def _match_fields(fields: list[tuple[str, Node | None]], fi: int, words: list[str], wi: int) -> bool:
    if fi == len(fields):
        return wi == len(words)
    name, node = fields[fi]
    if name == "...":
        return any(_match_fields(fields, fi + 1, words, k) for k in range(wi, len(words) + 1))
    if wi >= len(words):
        return False
    if node is not None and not _evaluate(node, lambda _sel: words[wi]):
        return False
    return _match_fields(fields, fi + 1, words, wi + 1)
