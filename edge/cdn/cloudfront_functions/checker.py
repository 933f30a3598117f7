"""The syntax gate: code CloudFront's runtime refuses must fail here too.

CloudFront publishes an *allow-list* of JavaScript features per runtime version; anything not listed is not
supported (AWS Developer Guide, CloudFront: ``functions-javascript-runtime-10`` "JavaScript runtime 1.0
features", ``functions-javascript-runtime-20`` "JavaScript runtime 2.0 features", index page
``functions-javascript-runtime-features``). Our engine (QuickJS, see ``engine.py``) accepts ES2023, so every
function's code is parsed here first with tree-sitter's JavaScript grammar (PyPI ``tree-sitter`` +
``tree-sitter-javascript``, maintained by the tree-sitter organisation) and refused constructs are reported with
the message CloudFront's engine gives.

CloudFront's error texts are nginx njs's (``SyntaxError: Token "of" not supported in this version in 22``, seen
in public postmortems; ``Unexpected token "=>" in 10`` in public test tools). Where the allow-list is silent the
rule below follows what njs 0.7.9 (Debian's ``njs``) refuses, checked one construct at a time while writing
this module (``tests/cdn/cloudfront_functions/test_checker.py`` cross-checks with njs when it is installed):

============================================  =========================================================  =====
construct                                     message (``SyntaxError: … in <line>``)                     rt
============================================  =========================================================  =====
parse error                                   ``Unexpected token "<tok>"`` / ``Unexpected end of input``  both
``class``                                     ``Token "class" not supported in this version``            both
generators ``function*``                      ``Unexpected token "*"``                                   both
default parameters ``f(a = 1)``               ``Unexpected token "="``                                   both
spread ``f(...a)``, ``[...a]``                ``Unexpected token "..."``                                 both
object spread ``{...o}``                      ``Token "..." not supported in this version``              both
destructuring ``var {a} = o``, ``[a] = l``    ``Token "a" not supported in this version``                both
``for (x of l)``                              ``Token "of" not supported in this version``               both
``for await``                                 ``Token "await" not supported in this version``            both
optional chaining ``o?.a``                    ``Unexpected token "?."``                                  both
BigInt ``10n``                                ``Unexpected token "n"``                                   both
logical assignment ``||= &&= ??=``            ``Unexpected token "="``                                   both
``new.target``, ``import.meta``               ``Unexpected token "."``                                   both
``catch {`` without binding                   ``Token "{" not supported in this version``                both
``with``                                      ``Token "(" not supported in this version``                both
``export``                                    ``Illegal export statement``                               both
regular expression flags other than g i m u   ``Invalid RegExp flags "<f>"`` (``y`` is allowed on 2.0)   both
top-level ``return``                          ``Illegal return statement``                               both
``const`` / ``let``                           ``Token "const" not supported in this version``            1.0
``async`` / ``await``                         ``Token "async" not supported in this version``            1.0
numeric separators ``1_000``                  ``Unexpected token "_000"``                                1.0
``import``                                    ``Cannot find module "cloudfront"``                        1.0
``import`` of anything but ``cloudfront``     ``Cannot find module "<name>"``                            2.0
``import`` not the first statement            ``Illegal import statement``                               2.0
``import {a}`` / ``import * as``              ``Unexpected token "{"`` / ``Unexpected token "*"``        2.0
``await`` inside call arguments               ``await in arguments not supported``                       2.0
============================================  =========================================================  =====

Built-ins outside the allow-list (``Map``, ``Set``, ``Proxy``, ``Reflect``, ``BigInt``, timers, ``process``…) are not
syntax: the engine's prelude removes them, so using them throws ``ReferenceError`` at execution as on CloudFront.

Emulator choices, not AWS facts: ``??`` is accepted (njs accepts it; the allow-list names only ES 5.1 operators
and ``**``); shorthand/computed properties and methods are accepted (njs accepts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

from edge.cdn.cloudfront_functions.limits import RUNTIME_1, RUNTIME_2

__all__ = ["CheckResult", "CodeProblem", "ImportBinding", "check_code"]


@dataclass(frozen=True, slots=True)
class CodeProblem:
    """One refused construct; ``message`` is CloudFront's text, e.g. ``SyntaxError: Token "of" not supported in
    this version in 3``."""

    line: int  # 1-based
    column: int  # 0-based
    text: str  # without the "SyntaxError: " prefix and " in <line>" suffix

    @property
    def message(self) -> str:
        return f"SyntaxError: {self.text} in {self.line}"


@dataclass(frozen=True, slots=True)
class ImportBinding:
    """``import NAME from 'cloudfront'`` on the first line: where it is, so the engine can bind NAME."""

    name: str
    start_byte: int
    end_byte: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    problems: tuple[CodeProblem, ...]
    cloudfront_import: ImportBinding | None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_error(self) -> str | None:
        return self.problems[0].message if self.problems else None


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_javascript.language()))


_FUNCTION_TYPES = frozenset(
    {
        "function_declaration",
        "function_expression",
        "function",
        "arrow_function",
        "method_definition",
        "generator_function_declaration",
        "generator_function",
    }
)
_PATTERN_TYPES = frozenset({"object_pattern", "array_pattern"})


def _text(node: Node) -> bytes:
    """A node's source bytes (tree-sitter types them optional: nodes of a parsed tree always have them)."""
    return node.text or b""


def _first_identifier(node: Node) -> str:
    stack = [node]
    while stack:
        n = stack.pop(0)
        if n.child_count == 0 and n.is_named:
            return _text(n).decode("utf-8", "replace")
        stack.extend(n.children)
    return _text(node).decode("utf-8", "replace")[:20]


class _Checker:
    def __init__(self, source: bytes, runtime: str) -> None:
        self.source = source
        self.v2 = runtime == RUNTIME_2
        self.problems: list[CodeProblem] = []
        self.cloudfront_import: ImportBinding | None = None

    def add(self, node: Node, text: str) -> None:
        row, col = node.start_point
        self.problems.append(CodeProblem(line=row + 1, column=col, text=text))

    def run(self) -> None:
        self.tree = tree = _parser().parse(self.source)
        root = tree.root_node
        for index, child in enumerate(root.named_children):
            if child.type == "import_statement":
                self.check_import(child, first=index == 0)
        # iterative walk: tree depth is bounded by the 10 KB code limit anyway, but never recurse on input
        stack: list[tuple[Node, int]] = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            self.visit(node, depth)
            child_depth = depth + 1 if node.type in _FUNCTION_TYPES else depth
            stack.extend((c, child_depth) for c in reversed(node.children))
        self.problems.sort(key=lambda p: (p.line, p.column))

    def visit(self, node: Node, fn_depth: int) -> None:
        t = node.type
        if node.is_missing or t == "ERROR":
            self.add(node, self.unexpected(node))
        elif t in ("class_declaration", "class"):
            self.add(node, 'Token "class" not supported in this version')
        elif t in ("generator_function_declaration", "generator_function") or (
            t == "method_definition" and any(c.type == "*" for c in node.children)
        ):
            self.add(node, 'Unexpected token "*"')
        elif t == "assignment_pattern" and node.parent is not None and node.parent.type == "formal_parameters":
            self.add(node, 'Unexpected token "="')
        elif t == "spread_element":
            if node.parent is not None and node.parent.type == "object":
                self.add(node, 'Token "..." not supported in this version')
            else:
                self.add(node, 'Unexpected token "..."')
        elif t in _PATTERN_TYPES and (node.parent is None or node.parent.type not in _PATTERN_TYPES):
            self.add(node, f'Token "{_first_identifier(node)}" not supported in this version')
        elif t == "for_in_statement":
            ops = [c.type for c in node.children if not c.is_named]
            if "await" in ops:
                self.add(node, 'Token "await" not supported in this version')
            elif "of" in ops:
                self.add(node, 'Token "of" not supported in this version')
        elif t == "optional_chain":
            self.add(node, 'Unexpected token "?."')
        elif t == "number":
            text = _text(node).decode("ascii", "replace")
            if text.endswith("n") and not text.lower().startswith("0x"):
                self.add(node, 'Unexpected token "n"')
            elif "_" in text and not self.v2:
                self.add(node, f'Unexpected token "{text[text.index("_"):]}"')
        elif t == "augmented_assignment_expression":
            op = next((c.type for c in node.children if not c.is_named), "")
            if op in ("||=", "&&=", "??="):
                self.add(node, 'Unexpected token "="')
        elif t == "meta_property":
            self.add(node, 'Unexpected token "."')
        elif t == "catch_clause" and node.child_by_field_name("parameter") is None:
            self.add(node, 'Token "{" not supported in this version')
        elif t == "with_statement":
            self.add(node, 'Token "(" not supported in this version')
        elif t == "export_statement":
            self.add(node, "Illegal export statement")
        elif t == "regex_flags":
            allowed = "gimuy" if self.v2 else "gimu"
            bad = "".join(ch for ch in _text(node).decode("ascii", "replace") if ch not in allowed)
            if bad:
                self.add(node, f'Invalid RegExp flags "{bad}"')
        elif t == "return_statement" and fn_depth == 0:
            self.add(node, "Illegal return statement")
        elif t == "lexical_declaration" and not self.v2:
            kind = node.children[0].type if node.children else "const"
            self.add(node, f'Token "{kind}" not supported in this version')
        elif t == "await_expression":
            if not self.v2:
                self.add(node, 'Token "await" not supported in this version')
            elif self.inside_arguments(node):
                self.add(node, "await in arguments not supported")
        elif not self.v2 and t in _FUNCTION_TYPES and any(c.type == "async" for c in node.children):
            self.add(node, 'Token "async" not supported in this version')

    @staticmethod
    def inside_arguments(node: Node) -> bool:
        parent = node.parent
        while parent is not None and parent.type not in _FUNCTION_TYPES:
            if parent.type == "arguments":
                return True
            parent = parent.parent
        return False

    def unexpected(self, node: Node) -> str:
        if node.is_missing or node.start_byte >= len(self.source.rstrip()):
            return "Unexpected end of input"
        # the parser stopped at the first token after what it had to skip (njs reports that token)
        text = self.source[node.end_byte :].lstrip()
        if not text:
            return "Unexpected end of input"
        leaf = self.tree.root_node.descendant_for_byte_range(len(self.source) - len(text), len(self.source) - len(text) + 1)
        token = _text(leaf).decode("utf-8", "replace") if leaf is not None and leaf.child_count == 0 else ""
        token = token.split()[0] if token.strip() else text[:1].decode("utf-8", "replace")
        return f'Unexpected token "{token[:40]}"'

    def check_import(self, node: Node, *, first: bool) -> None:
        source = node.child_by_field_name("source")
        module = _text(source).decode("utf-8", "replace").strip("'\"") if source is not None else ""
        if not self.v2:
            self.add(node, f'Cannot find module "{module}"')
            return
        if module != "cloudfront":
            self.add(node, f'Cannot find module "{module}"')
            return
        if not first:
            self.add(node, "Illegal import statement")
            return
        clause = next((c for c in node.children if c.type == "import_clause"), None)
        if clause is None or clause.named_child_count != 1 or clause.named_children[0].type != "identifier":
            bad = next((c for c in (clause.children if clause else []) if c.type != "identifier"), None)
            token = "{" if bad is not None and bad.type == "named_imports" else "*"
            self.add(node, f'Unexpected token "{token}"')
            return
        ident = clause.named_children[0]
        self.cloudfront_import = ImportBinding(
            name=_text(ident).decode("utf-8"), start_byte=node.start_byte, end_byte=node.end_byte
        )


def check_code(code: str, runtime: str) -> CheckResult:
    """Check ``code`` against ``runtime``'s allow-list (``cloudfront-js-1.0`` or ``cloudfront-js-2.0``)."""
    if runtime not in (RUNTIME_1, RUNTIME_2):
        raise ValueError(f"unknown runtime {runtime!r}: use {RUNTIME_1} or {RUNTIME_2}")
    checker = _Checker(code.encode("utf-8"), runtime)
    checker.run()
    return CheckResult(problems=tuple(checker.problems), cloudfront_import=checker.cloudfront_import)
