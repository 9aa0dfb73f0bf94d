"""GGUF model files (llama.cpp): header and metadata parsed by hand, chat templates checked.

Format: ``GGUF`` magic, a version (2 or 3; little-endian, or big-endian files whose
version reads byte-swapped), the tensor count and the metadata key/value count
(uint64), then the key/value pairs (a length-prefixed UTF-8 key, a uint32 value
type, the value: 8- to 64-bit integers, floats, bool, string, or a typed array, which
may nest), then the tensor infos (name, dimensions, type, offset) and the aligned
tensor data, which is never read. Every length and count is checked against the
bytes left in the file before anything is allocated, so a header that claims huge
strings or arrays gets an error verdict, never a memory exhaustion.

Threat model: GGUF holds no code, but ``tokenizer.chat_template`` (and the
``tokenizer.chat_template.<name>`` variants) is a Jinja2 template that runtimes render
for every conversation. Rendering it outside a sandbox is server-side template
injection: ``{{ ''.__class__.__mro__[1].__subclasses__() }}`` reaches Python's
object graph and from there ``os.popen`` (CVE-2024-34359, "Llama Drama", in
llama-cpp-python < 0.2.72, which rendered GGUF chat templates with a plain
``jinja2.Environment``). Templates are parsed (never rendered) with Jinja2's own
parser and the syntax tree is checked for:

- attribute access to names starting with ``_`` (``__class__``, ``__mro__``,
  ``__subclasses__``, ``__globals__``, ``__builtins__``, ``__init__``,
  ``_TemplateReference__context`` ...) or to ``popen``, ``system``, ``os``,
  ``subprocess``, ``builtins``, ``eval``, ``exec``, ``import_module`` ... through
  ``.name``, ``['name']``, ``|attr('name')`` or ``map(attribute=...)``;
- attribute names computed at render time (``|attr(x)`` with a non-constant
  argument, subscripts whose key is built from strings) and strings assembled from
  pieces that spell a dunder (``'__cla' ~ 'ss__'``, ``['_'*2, 'class', '_'*2]|join``);
- the Jinja2 globals that serve as gadgets (``lipsum``, ``cycler``, ``joiner``,
  ``self``) and Flask's (``request``, ``config``, ``url_for``), and
  ``include``/``import``/``extends`` of other templates.

A template that Jinja2 cannot parse is checked as text (inside ``{{ }}``/``{% %}``,
with adjacent string literals joined). Findings are MLW-SUP-007.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from mlwarden.supplychain.rules import RULE_GGUF_TEMPLATE
from mlwarden.supplychain.scan._context import FileScan, human_bytes

__all__ = ["check_template", "scan_gguf"]

_FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
MAX_ARRAY_DEPTH = 8
MAX_DIMS = 8
TEMPLATE_KEY = "tokenizer.chat_template"
MAX_TEMPLATE = 1 << 20
"""Longest chat template checked (real ones are a few KiB)."""

DANGEROUS_ATTRS = frozenset(
    {
        "mro",
        "popen",
        "system",
        "os",
        "subprocess",
        "builtins",
        "globals",
        "func_globals",
        "f_globals",
        "f_locals",
        "f_back",
        "f_builtins",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "ag_frame",
        "tb_frame",
        "im_func",
        "func_code",
        "check_output",
        "check_call",
        "import_module",
        "load_module",
        "eval",
        "exec",
        "spawn",
        "environ",
        "getattr",
        "setattr",
        "modules",
        "sys",
        "importlib",
    }
)
"""Attribute names a chat template has no reason to touch."""

GADGET_NAMES = frozenset(
    {"lipsum", "cycler", "joiner", "self", "request", "config", "url_for", "get_flashed_messages"}
)
"""Globals whose attributes lead to Python internals (Jinja2's and Flask's)."""

_ATTRIBUTE_FILTERS = frozenset(
    {"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)
_SUBSCRIPT_DANGEROUS = frozenset(
    {"popen", "subprocess", "builtins", "globals", "eval", "exec", "import_module", "getattr"}
)
_STRING_FILTERS = frozenset(
    {"join", "format", "replace", "reverse", "string", "lower", "upper", "trim", "attr"}
)
_STRING_METHODS = frozenset({"join", "format", "replace", "upper", "lower", "strip", "decode"})
_DUNDER = re.compile(r"__\w+__")
_TAG = re.compile(r"\{%-?\s*(end)?generation\s*-?%\}")
_BLOCKS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_JOIN_LITERALS = re.compile(r"""(['"])\s*[~+]\s*(['"])""")
_TEXT_GADGETS = re.compile(
    r"__\w+__|\|\s*attr\b|\battr\s*\(|\bpopen\b|\bsubprocess\b|\bos\.|__import__|\bimport_module\b"
    r"|\b(?:lipsum|cycler|joiner|request|config|url_for)\b|\beval\s*\(|\bexec\s*\("
)


class _HeaderError(ValueError):
    pass


class _Reader:
    def __init__(self, data: memoryview, endian: str) -> None:
        self.data = data
        self.pos = 0
        self.e = endian

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.left < size:
            raise _HeaderError(f"truncated at offset {self.pos}")
        (v,) = struct.unpack_from(self.e + fmt, self.data, self.pos)
        self.pos += size
        return v

    def string(self, what: str) -> str:
        n = self.unpack("Q")
        if n > self.left:
            raise _HeaderError(
                f"{what} at offset {self.pos - 8} claims {human_bytes(n)} but only "
                f"{human_bytes(self.left)} remain"
            )
        raw = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", "replace")

    def skip_string(self, what: str) -> None:
        n = self.unpack("Q")
        if n > self.left:
            raise _HeaderError(
                f"{what} at offset {self.pos - 8} claims {human_bytes(n)} but only "
                f"{human_bytes(self.left)} remain"
            )
        self.pos += n

    def value(self, vtype: int, keep: bool, depth: int = 0) -> Any:
        if vtype in _FIXED:
            return self.unpack(_FIXED[vtype])
        if vtype == _STRING:
            if keep:
                return self.string("string")
            self.skip_string("string")
            return None
        if vtype == _ARRAY:
            if depth >= MAX_ARRAY_DEPTH:
                raise _HeaderError(f"arrays nested deeper than {MAX_ARRAY_DEPTH}")
            etype = self.unpack("I")
            count = self.unpack("Q")
            if etype in _FIXED:
                size = struct.calcsize(_FIXED[etype])
                if count * size > self.left:
                    raise _HeaderError(
                        f"array at offset {self.pos} claims {count} elements, more than "
                        "the file holds"
                    )
                self.pos += count * size
                return None
            if etype not in (_STRING, _ARRAY):
                raise _HeaderError(f"unknown array element type {etype}")
            if count * (8 if etype == _STRING else 12) > self.left:
                raise _HeaderError(
                    f"array at offset {self.pos} claims {count} elements, more than the file holds"
                )
            items = [self.value(etype, keep, depth + 1) for _ in range(count)]
            return items if keep else None
        raise _HeaderError(f"unknown value type {vtype} at offset {self.pos - 4}")


def scan_gguf(ctx: FileScan, data: memoryview) -> None:
    """Parse a GGUF header and metadata; check every chat template."""
    if len(data) < 24:
        ctx.error("truncated GGUF header")
        return
    (version,) = struct.unpack_from("<I", data, 4)
    endian = "<"
    if version not in (2, 3):
        (be_version,) = struct.unpack_from(">I", data, 4)
        if be_version in (2, 3):
            endian, version = ">", be_version
        else:
            ctx.error(
                f"GGUF version {version} is not supported (versions 2 and 3 are)"
                + ("; version 1 is obsolete" if version == 1 else "")
            )
            return
    r = _Reader(data, endian)
    r.pos = 8
    templates: list[tuple[str, str]] = []
    try:
        n_tensors = r.unpack("Q")
        n_kv = r.unpack("Q")
        if n_kv * 13 > r.left or n_tensors * 24 > r.left:
            raise _HeaderError(
                f"the header claims {n_kv} metadata entries and {n_tensors} tensors, more "
                f"than {human_bytes(len(data))} can hold"
            )
        for i in range(n_kv):
            key = r.string(f"key {i}")
            vtype = r.unpack("I")
            keep = key.startswith(TEMPLATE_KEY)
            value = r.value(vtype, keep)
            if keep:
                for text in value if isinstance(value, list) else [value]:
                    if isinstance(text, str):
                        templates.append((key, text))
        for i in range(n_tensors):
            r.skip_string(f"tensor {i} name")
            n_dims = r.unpack("I")
            if n_dims > MAX_DIMS:
                raise _HeaderError(f"tensor {i} has {n_dims} dimensions")
            for _ in range(n_dims):
                r.unpack("Q")
            r.unpack("I")
            r.unpack("Q")
    except _HeaderError as exc:
        ctx.add_scanned(r.pos)
        ctx.error(f"invalid GGUF header: {exc}")
        for key, text in templates:  # what was read before the break is still checked
            _report(ctx, key, text)
        return
    ctx.add_scanned(r.pos)
    for key, text in templates:
        _report(ctx, key, text)
    ctx.note(
        f"GGUF v{version}: {n_kv} metadata entries, {n_tensors} tensors "
        f"({human_bytes(len(data) - r.pos)} of tensor data, not read), "
        f"{len(templates)} chat template{'s' if len(templates) != 1 else ''} checked"
    )


def _report(ctx: FileScan, key: str, text: str) -> None:
    if len(text) > MAX_TEMPLATE:
        ctx.error(
            f"the chat template is {human_bytes(len(text))}, too large to check "
            f"(limit {human_bytes(MAX_TEMPLATE)})",
            key,
        )
        return
    for construct, why in check_template(text):
        ctx.issue(
            RULE_GGUF_TEMPLATE,
            key,
            construct,
            f"the chat template {why}; rendered outside a sandbox this runs Python code.",
        )


def scan_template_file(ctx: FileScan, data: memoryview, name: str) -> None:
    """A stand-alone Jinja chat template (``chat_template.jinja``): the same checks as a
    template inside GGUF metadata or a tokenizer config."""
    if len(data) > MAX_TEMPLATE:
        ctx.error(
            f"a chat template of {human_bytes(len(data))}, over the "
            f"{human_bytes(MAX_TEMPLATE)} limit"
        )
        return
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        ctx.error(f"unknown format: a .jinja file that is not UTF-8 text (byte {exc.start})")
        return
    ctx.add_scanned(len(data))
    for construct, why in check_template(text):
        ctx.issue(
            RULE_GGUF_TEMPLATE,
            name,
            construct,
            f"the chat template {why}; rendered outside a sandbox this runs Python code.",
        )
    ctx.note("Jinja chat template (checked for access to Python internals)")


def check_template(text: str) -> list[tuple[str, str]]:
    """What in a Jinja2 chat template reaches Python internals.

    Returns
    -------
    list of (construct, reason)
        Empty for a template that only reads messages and variables.
    """
    import jinja2
    from jinja2 import nodes

    source = _TAG.sub("", text)
    env = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"])
    try:
        tree = env.parse(source)
    except (jinja2.TemplateSyntaxError, RecursionError, MemoryError):
        return _check_text(text)
    found: list[tuple[str, str]] = []

    def add(construct: str, why: str) -> None:
        if (construct, why) not in found:
            found.append((construct, why))

    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Getattr):
            if _bad_attr(node.attr):
                add(f".{node.attr}", f"accesses attribute {node.attr!r}")
        elif isinstance(node, nodes.Getitem):
            key = node.arg
            if isinstance(key, nodes.Const):
                if isinstance(key.value, str) and _bad_key(key.value):
                    add(f"[{key.value!r}]", f"accesses attribute {key.value!r} by subscript")
            elif _stringish(key):
                add("computed subscript", "looks up an attribute name computed at render time")
        elif isinstance(node, nodes.Filter):
            if node.name == "attr":
                arg = node.args[0] if node.args else None
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    if _bad_attr(arg.value):
                        add(f"|attr({arg.value!r})", f"accesses attribute {arg.value!r}")
                else:
                    add("|attr(<computed>)", "uses |attr with a name computed at render time")
            elif node.name in _ATTRIBUTE_FILTERS:
                for kw in node.kwargs:
                    if kw.key == "attribute":
                        if isinstance(kw.value, nodes.Const) and isinstance(kw.value.value, str):
                            if any(_bad_attr(p) for p in kw.value.value.split(".")):
                                add(
                                    f"|{node.name}(attribute={kw.value.value!r})",
                                    f"accesses attribute {kw.value.value!r}",
                                )
                        else:
                            add(
                                f"|{node.name}(attribute=<computed>)",
                                "uses an attribute name computed at render time",
                            )
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name in GADGET_NAMES:
            add(node.name, f"uses {node.name!r}, a known template-injection gadget")
        elif isinstance(node, nodes.Import | nodes.FromImport | nodes.Include | nodes.Extends):
            add(type(node).__name__.lower(), "loads another template")
        if isinstance(node, nodes.Concat | nodes.Add | nodes.Mul | nodes.Filter):
            folded = _fold(node)
            if isinstance(folded, str) and (_DUNDER.search(folded) or folded.startswith("_")):
                add(f"string built as {folded!r:.60}", f"assembles {folded!r:.60} from pieces")
    return found


def _bad_attr(name: str) -> bool:
    return name.startswith("_") or name in DANGEROUS_ATTRS


def _bad_key(name: str) -> bool:
    """A subscript key that is an attribute lookup in disguise (Jinja2 falls back from
    ``obj[key]`` to ``getattr(obj, key)``). Plain words such as ``'system'`` are
    ordinary dictionary keys in chat templates, so only the unambiguous ones count."""
    return name.startswith("_") or name in _SUBSCRIPT_DANGEROUS


def _stringish(node: Any) -> bool:
    """True when an expression builds a string (so a subscript with it is an attribute
    lookup in disguise); integer arithmetic like ``messages[i + 1]`` is not."""
    from jinja2 import nodes

    for sub in [node, *node.find_all(nodes.Node)]:
        if isinstance(sub, nodes.Concat):
            return True
        if isinstance(sub, nodes.Filter) and sub.name in _STRING_FILTERS:
            return True
        if (
            isinstance(sub, nodes.Call)
            and isinstance(sub.node, nodes.Getattr)
            and sub.node.attr in _STRING_METHODS
        ):
            return True
        if isinstance(sub, nodes.Const) and isinstance(sub.value, str):
            return True
    return False


def _fold(node: Any, depth: int = 0) -> Any:
    """The constant value of a string expression, or None when it is not constant."""
    from jinja2 import nodes

    if depth > 32:
        return None
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Concat):
        parts = [_fold(n, depth + 1) for n in node.nodes]
        if all(p is not None for p in parts):
            return "".join(str(p) for p in parts)
        return None
    if isinstance(node, nodes.Add | nodes.Mul):
        left, right = _fold(node.left, depth + 1), _fold(node.right, depth + 1)
        try:
            if isinstance(node, nodes.Add) and isinstance(left, str) and isinstance(right, str):
                return left + right
            if isinstance(node, nodes.Mul):
                if isinstance(left, str) and isinstance(right, int) and 0 <= right <= 64:
                    return left * right
                if isinstance(right, str) and isinstance(left, int) and 0 <= left <= 64:
                    return right * left
        except TypeError:
            return None
        return None
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_fold(n, depth + 1) for n in node.items]
        return items if all(i is not None for i in items) else None
    if isinstance(node, nodes.Filter) and node.node is not None:
        inner = _fold(node.node, depth + 1)
        if inner is None:
            return None
        if node.name == "join" and isinstance(inner, list):
            sep = _fold(node.args[0], depth + 1) if node.args else ""
            return str(sep or "").join(str(i) for i in inner)
        if node.name == "reverse" and isinstance(inner, str):
            return inner[::-1]
        if node.name in ("string", "trim", "lower", "upper") and isinstance(inner, str):
            return {
                "string": inner,
                "trim": inner.strip(),
                "lower": inner.lower(),
                "upper": inner.upper(),
            }[node.name]
        if node.name == "replace" and isinstance(inner, str) and len(node.args) >= 2:
            old, new = _fold(node.args[0], depth + 1), _fold(node.args[1], depth + 1)
            if isinstance(old, str) and isinstance(new, str):
                return inner.replace(old, new)
        if node.name == "format" and isinstance(inner, str):
            args = [_fold(a, depth + 1) for a in node.args]
            if all(a is not None for a in args):
                try:
                    return inner % tuple(args)
                except (TypeError, ValueError):
                    return None
    return None


def _check_text(text: str) -> list[tuple[str, str]]:
    """Fallback for templates Jinja2 cannot parse: search the tags as text."""
    found: list[tuple[str, str]] = []
    for block in _BLOCKS.findall(text):
        joined = _JOIN_LITERALS.sub("", block)
        for m in _TEXT_GADGETS.finditer(joined):
            item = (m.group(0).strip(), f"uses {m.group(0).strip()!r} (template not parseable)")
            if item not in found:
                found.append(item)
    return found
