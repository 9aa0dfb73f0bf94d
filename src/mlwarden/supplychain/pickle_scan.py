"""Static analysis of pickle streams: what a pickle imports and calls, without running it.

Threat model
------------
A pickle is a program for a small stack machine. ``GLOBAL``/``STACK_GLOBAL``/``INST``
import any callable, ``REDUCE``/``NEWOBJ``/``OBJ``/``INST`` call it, ``BUILD`` calls
``__setstate__``, ``APPENDS``/``SETITEMS``/``ADDITEMS`` call ``extend``/``__setitem__``/
``add`` on whatever object is on the stack. Loading a model file written by someone
else therefore runs their code unless every import is checked first. Scanners have
been bypassed many times, and each bypass is a case this module handles:

* names built at load time (``STACK_GLOBAL`` fed by the result of a call, a long or
  binary string, an ``EXT`` extension code), dotted attribute walks
  (``os.path`` + ``os.system``-style names, ``<locals>``) and ``builtins.getattr``
  chains that reach ``os.system`` from an innocent class (Trail of Bits' *fickling*;
  the JFrog and Sonatype advisories on picklescan; the "Weaponizing ML models with
  ransomware" and "Exploiting ML models with pickle file attacks" write-ups);
* calls of values that were never imported (a ``REDUCE`` whose callable came from
  another call), mutation of imported classes (``BUILD``/``SETITEM`` on a global);
* payloads after a benign-looking prefix, payloads in streams that are cut after the
  dangerous opcode (a scanner that raises on truncation reports nothing; this one
  reports everything it saw before the break and marks the scan incomplete);
* pickles inside pickles: bytes handed to ``pickle.loads`` and friends, pickles hidden
  in byte strings, and joblib's object arrays, which are pickles written straight
  into the stream after a ``NumpyArrayWrapper`` (modelscan and picklescan treat
  joblib files as one pickle and lose track of the opcodes after the first array);
* parser differentials: frames that end after ``STOP`` (stacked pickles such as legacy
  torch files resume at the frame end), joblib array bytes that start inside a frame.

Every global is decided by :func:`mlwarden.supplychain.allowlist.decide`, the same
function the restricted unpickler of :mod:`mlwarden.supplychain.safe_load` uses.

The walker is written for speed: it never builds Python objects for array payloads
(byte strings are kept as offsets into a :class:`memoryview`), keeps only the parts of
containers it needs to resolve names statically (the stack and memo hold symbolic
values), and handles every opcode of protocols 0 to 5.
"""

from __future__ import annotations

import codecs
import contextlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlwarden.findings.taxonomy import Rule, Severity
from mlwarden.supplychain.allowlist import GETATTR, Decision, decide, normalize
from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.result import ScanIssue
from mlwarden.supplychain.rules import (
    RULE_DANGEROUS_GLOBAL,
    RULE_EMBEDDED_PICKLE,
    RULE_HIDDEN_IMPORT,
    RULE_MALFORMED,
)

__all__ = ["MAX_DEPTH", "PickleScan", "looks_like_pickle", "scan_pickle"]

MAX_DEPTH = 8
"""How deep pickles nested in pickles are followed."""

_DEFAULT_POLICY = Policy()
_DEFAULT_DECISIONS: dict[tuple[str, str], Decision] = {}
_SHORT_TEXT = 1024  # strings up to this many bytes are decoded; longer ones stay offsets
_MAX_NAME = 65536  # longest string accepted as a module or global name
_MAX_ITEMS = 256  # tuples and dicts larger than this are kept opaque
_HIGHEST_PROTOCOL = 5

_LOADERS = frozenset(
    {
        "pickle.loads",
        "pickle.load",
        "pickle._loads",
        "pickle._load",
        "_pickle.loads",
        "_pickle.load",
        "pickle.Unpickler",
        "_pickle.Unpickler",
        "pickle._Unpickler",
        "dill.loads",
        "dill.load",
        "dill._dill.loads",
        "dill._dill.load",
        "cloudpickle.loads",
        "cloudpickle.load",
        "numpy.loads",
        "numpy.core.multiarray.loads",
        "numpy.core.numeric.loads",
        "numpy.load",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "torch.load",
        "torch.serialization.load",
        "torch.storage._load_from_bytes",
        "pandas.read_pickle",
        "pandas.io.pickle.read_pickle",
    }
)
"""Callables that deserialise a pickle from their first argument."""

_DTYPE = frozenset({"numpy.dtype", "numpy._core.multiarray.dtype", "numpy.core.multiarray.dtype"})
_WRAPPER = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    }
)
_ENCODE = frozenset({"_codecs.encode", "codecs.encode"})
_BYTES_CTORS = frozenset({"io.BytesIO", "_io.BytesIO", "builtins.bytes", "builtins.bytearray"})
_RECONSTRUCTOR = "copyreg._reconstructor"
_INVOKERS: dict[str, tuple[int, ...]] = {
    # Allowed callables that call one of their arguments: those arguments must be
    # imported globals too, never values computed at load time.
    "copyreg._reconstructor": (0, 1),
    "copyreg.__newobj__": (0,),
    "copyreg.__newobj_ex__": (0,),
    "functools.partial": (0,),
    "collections.defaultdict": (0,),
    "torch._tensor._rebuild_from_type_v2": (0, 1),
    "torch._tensor._rebuild_from_type": (0, 1),
    "torch._utils._rebuild_wrapper_subclass": (0,),
    "numpy._core.multiarray._reconstruct": (0,),
    "numpy.core.multiarray._reconstruct": (0,),
    "numpy.ma.core._mareconstruct": (0, 1),
    "numpy.random._pickle.__bit_generator_ctor": (0,),
    "numpy.random._pickle.__generator_ctor": (1,),
    "numpy.random._pickle.__randomstate_ctor": (1,),
    "pandas.core.indexes.base._new_Index": (0,),
    "pandas.core.indexes.datetimes._new_DatetimeIndex": (0,),
    "pandas.core.indexes.period._new_PeriodIndex": (0,),
    "pandas.core.indexes.interval._new_IntervalIndex": (0,),
    "pandas.core.indexes.timedeltas._new_TimedeltaIndex": (0,),
    "sklearn.neighbors._ball_tree.newObj": (0,),
    "sklearn.neighbors._kd_tree.newObj": (0,),
}

# kinds of globals the walker treats specially
_K_PLAIN = 0
_K_GETATTR = 1
_K_LOADER = 2
_K_DTYPE = 3
_K_WRAPPER = 4
_K_ENCODE = 5
_K_BYTES = 6
_K_INVOKER = 7

_u2 = struct.Struct("<H").unpack_from
_u4 = struct.Struct("<I").unpack_from
_i4 = struct.Struct("<i").unpack_from
_u8 = struct.Struct("<Q").unpack_from
_f8 = struct.Struct(">d").unpack_from


@dataclass
class PickleScan:
    """What :func:`scan_pickle` found in one pickle stream.

    Parameters
    ----------
    issues : list of ScanIssue
        Everything dangerous, including what nested pickles contain.
    globals : list of str
        Every global the stream (and its nested pickles) imports, first appearance
        first; ``getattr(cls, "name")`` with constant arguments counts as ``cls.name``.
    end : int
        Offset just past ``STOP`` relative to the start of ``data`` (past the frame
        that holds ``STOP`` if the frame runs on: file-based loaders resume there), or
        where parsing stopped.
    complete : bool
        True when ``STOP`` was reached and every opcode was understood.
    error : str or None
        Why parsing stopped early; ``None`` when complete.
    notes : list of str
        Facts for reviewers (protocol, skipped joblib arrays, forced globals).
    """

    issues: list[ScanIssue] = field(default_factory=list)
    globals: list[str] = field(default_factory=list)
    end: int = 0
    complete: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def looks_like_pickle(head: bytes | memoryview) -> bool:
    """True when ``head`` starts with a ``PROTO`` opcode for protocol 2 to 5."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= _HIGHEST_PROTOCOL


def scan_pickle(
    data: bytes | bytearray | memoryview,
    *,
    path: str,
    member: str = "",
    base_offset: int = 0,
    policy: Policy | None = None,
    joblib_frames: bool = False,
    depth: int = 0,
) -> PickleScan:
    """Scan exactly one pickle at the start of ``data`` without executing anything.

    Parameters
    ----------
    data : bytes or memoryview
        The stream; bytes after ``STOP`` (stacked pickles, trailing data) are left
        alone and :attr:`PickleScan.end` says where they start. It is never copied.
    path : str
        The file, for issue records and error messages.
    member : str, default=""
        The archive member holding the stream, for issue locations.
    base_offset : int, default=0
        Offset of ``data`` inside ``member`` (or the file), so that issue locations
        (``member@offset``) point at the opcode in the file.
    policy : Policy or None
        The user's additions to the allowlist and denylist.
    joblib_frames : bool, default=False
        The stream was written by ``joblib.dump``: raw array bytes (or, for object
        arrays, a whole nested pickle) follow each ``BUILD`` of a
        ``NumpyArrayWrapper``, exactly where joblib's unpickler reads them.
    depth : int, default=0
        Nesting depth (pickles inside pickles); at :data:`MAX_DEPTH` nested pickles
        are reported but not followed.

    Returns
    -------
    PickleScan
        Issues, globals, the end offset and whether the scan was complete.
    """
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    # Index a bytes object directly when we have one (faster than a memoryview);
    # slices of a memoryview are taken only for what must be decoded.
    buf: bytes | bytearray | memoryview = (
        data if isinstance(data, (bytes, bytearray)) and mv.nbytes == len(data) else mv
    )
    walker = _Walker(
        mv,
        buf,
        path=path,
        member=member,
        base=base_offset,
        policy=policy if policy is not None else _DEFAULT_POLICY,
        joblib=joblib_frames,
        depth=depth,
    )
    return walker.run()


# ---------------------------------------------------------------- symbolic values
class _Global:
    """A global imported by the stream."""

    __slots__ = ("allowed", "first_only", "full", "kind", "module", "name", "pos", "res")

    def __init__(self, module: str, name: str, full: str, allowed: bool, kind: int, pos: int):
        self.module = module
        self.name = name
        self.full = full
        self.allowed = allowed
        self.kind = kind
        self.pos = pos
        self.res = _Res(self)  # the (opaque) result of calling it, shared
        # an invoker that only calls its first argument (numpy's _reconstruct, ...)
        self.first_only = kind == _K_INVOKER and _INVOKERS.get(full) == (0,)


class _Obj:
    """The result of a call (``REDUCE``, ``NEWOBJ``, ``OBJ``, ``INST``)."""

    __slots__ = ("args", "builds", "func", "how", "pos", "state")

    def __init__(self, func: object, args: object, how: str, pos: int):
        self.func = func
        self.args = args
        self.how = how
        self.pos = pos
        self.state: object = None
        self.builds = 0


class _Res:
    """The result of calling a plain allowed (or already reported) global."""

    __slots__ = ("func",)

    def __init__(self, func: _Global):
        self.func = func


def _Blob(start: int, end: int, kind: str) -> slice:  # noqa: N802 - a value constructor
    """A byte string (or a long text) kept as offsets into the stream.

    A :class:`slice` is the cheapest object CPython can build for this, and no pickle
    can put a real slice on the walker's stack (calls yield symbolic values), so
    ``type(v) is slice`` identifies blobs. ``step`` holds the kind: ``"bytes"``,
    ``"bytearray"``, ``"str8"`` (BINSTRING), ``"utf8"`` (long text) or ``"ruesc"``
    (a long protocol-0 UNICODE line).
    """
    return slice(start, end, kind)


class _Dict(dict):  # type: ignore[type-arg]
    """A dict built by the stream; ``big`` once it grew too large to track (then empty).

    Hashed and compared by identity, like the other symbolic values, so that it can sit
    inside tuples used as keys.
    """

    __hash__ = object.__hash__  # type: ignore[assignment]
    big = False

    def __eq__(self, other: object) -> bool:
        return self is other


class _Opaque:
    """A value the walker does not model (lists, sets, persistent ids, arrays)."""

    __slots__ = ("reported", "what")

    def __init__(self, what: str, reported: bool = False):
        self.what = what
        self.reported = reported


_LIST = "list"
_SET = "set"
_LIST_VALUE = _Opaque(_LIST)


class _StopScanError(Exception):
    """Parsing cannot go on; ``str(self)`` says why."""


def _describe(v: object) -> str:
    if isinstance(v, _Global):
        return v.full
    if isinstance(v, (_Obj, _Res)):
        return f"{_describe(v.func)}(...)"
    if isinstance(v, _Opaque):
        return v.what
    if isinstance(v, str):
        return repr(v[:60])
    if type(v) is slice:
        return f"a {v.stop - v.start}-byte string"
    return type(v).__name__


def _kind_of(full: str) -> int:
    if full == GETATTR:
        return _K_GETATTR
    if full in _LOADERS:
        return _K_LOADER
    if full in _DTYPE:
        return _K_DTYPE
    if full in _WRAPPER:
        return _K_WRAPPER
    if full in _ENCODE:
        return _K_ENCODE
    if full in _BYTES_CTORS:
        return _K_BYTES
    if full in _INVOKERS:
        return _K_INVOKER
    return _K_PLAIN


# ------------------------------------------------------------------------ walker
class _Walker:
    def __init__(
        self,
        mv: memoryview,
        buf: bytes | bytearray | memoryview,
        *,
        path: str,
        member: str,
        base: int,
        policy: Policy,
        joblib: bool,
        depth: int,
    ):
        self.mv = mv
        self.buf = buf
        self.path = path
        self.member = member
        self.base = base
        self.policy = policy
        self.joblib = joblib
        self.depth = depth
        self.issues: list[ScanIssue] = []
        self.globals: list[str] = []
        self._seen_globals: set[str] = set()
        self._gcache: dict[tuple[str, str], _Global] = {}
        self._reported: set[tuple[str, str]] = set()
        self.notes: list[str] = []
        self.frame_end = -1
        self._after_global = 0
        # builtins.getattr (and, for joblib streams, NumpyArrayWrapper) globals seen:
        # turns on the checks of where they are stored or passed
        self.watched = 0
        self.arrays = 0
        self.array_bytes = 0
        self.object_arrays = 0
        self.proto = 0

    # ----------------------------------------------------------------- reporting
    def _loc(self, pos: int) -> str:
        return f"{self.member}@{self.base + pos}"

    def _issue(
        self, rule: Rule, pos: int, construct: str, message: str, severity: Severity | None = None
    ) -> None:
        key = (rule.id, construct)
        if key in self._reported:
            return
        self._reported.add(key)
        self.issues.append(
            ScanIssue(
                rule_id=rule.id,
                severity=severity if severity is not None else rule.severity,
                path=self.path,
                location=self._loc(pos),
                construct=construct,
                message=message,
            )
        )

    def _record(self, name: str) -> None:
        if name not in self._seen_globals:
            self._seen_globals.add(name)
            self.globals.append(name)

    def _report_decision(self, d: Decision, pos: int, how: str) -> None:
        if d.allowed:
            if d.forced:
                note = f"{d.name} was allowed by the policy despite the denylist (force)"
                if note not in self.notes:
                    self.notes.append(note)
            return
        rule = d.rule if d.rule is not None else RULE_DANGEROUS_GLOBAL
        self._issue(rule, pos, d.name, f"{how} {d.name}: {d.reason}.", d.severity)

    def _import(self, module: str, name: str, pos: int, opcode: str) -> _Global:
        key = (module, name)
        g = self._gcache.get(key)
        if g is not None:
            if g.kind == _K_GETATTR or (g.kind == _K_WRAPPER and self.joblib):
                self.watched += 1
            return g
        module, name = normalize(module, name)
        full = f"{module}.{name}"
        self._record(full)
        kind = _kind_of(full)
        if kind == _K_GETATTR:
            # Decided where it is used (see _call): getattr(<allowed global>, "name")
            # with constant arguments is a static import of a dotted name.
            self.watched += 1
            g = _Global(module, name, full, False, kind, pos)
        else:
            d = self._decide(module, name)
            self._report_decision(d, pos, f"{opcode} imports")
            g = _Global(module, name, full, d.allowed, kind, pos)
            if kind == _K_WRAPPER and self.joblib:
                self.watched += 1
        self._gcache[key] = g
        return g

    def _decide(self, module: str, name: str) -> Decision:
        if self.policy is _DEFAULT_POLICY:
            key = (module, name)
            d = _DEFAULT_DECISIONS.get(key)
            if d is None:
                d = _DEFAULT_DECISIONS[key] = decide(module, name, self.policy)
            return d
        return decide(module, name, self.policy)

    def _hidden(self, pos: int, construct: str, message: str) -> None:
        self._issue(RULE_HIDDEN_IMPORT, pos, construct, message)

    def _escaped(self, values: Iterable[object], pos: int) -> None:
        """Check where watched globals end up.

        ``builtins.getattr`` stored as a value (rather than called statically) is
        reported. In a joblib stream, ``NumpyArrayWrapper`` may only be instantiated
        the two ways joblib writes (``NEWOBJ`` with no arguments, or
        ``copyreg._reconstructor(wrapper, object, None)``): an instance built any
        other way (``copyreg.__newobj__``, a factory that calls its argument ...)
        would make joblib read array bytes where the scanner reads opcodes, so the
        scan stops (fail closed).
        """
        values = tuple(values)
        for v in values:
            if type(v) is not _Global:
                continue
            if v.kind == _K_WRAPPER and self.joblib:
                if not _is_reconstructor_args(values):
                    raise _StopScanError(
                        f"joblib array wrapper used at offset {self.base + pos} in a way "
                        "joblib never writes; refusing to guess where its data is"
                    )
            elif v.kind == _K_GETATTR:
                d = decide("builtins", "getattr", self.policy)
                if not d.allowed:
                    rule = d.rule if d.rule is not None else RULE_DANGEROUS_GLOBAL
                    self._issue(
                        rule,
                        v.pos,
                        GETATTR,
                        "The pickle keeps builtins.getattr as a value (not a constant "
                        "attribute lookup on an allowed global), a gadget that reaches any "
                        f"attribute of any object: {d.reason}.",
                        d.severity,
                    )

    # ----------------------------------------------------------------- helpers
    def _truncated(self, pos: int, what: str, need: int) -> _StopScanError:
        left = len(self.mv) - pos
        return _StopScanError(
            f"pickle data is truncated at offset {self.base + pos}: {what} needs "
            f"{need} byte(s), {max(left, 0)} left"
        )

    def _line_end(self, pos: int, what: str) -> int:
        """Offset of the newline that ends the argument starting at ``pos``."""
        buf = self.buf
        if not isinstance(buf, memoryview):
            i = buf.find(b"\n", pos)
        else:  # search in chunks: never copy the whole stream
            i, start, end = -1, pos, len(buf)
            while start < end:
                found = bytes(buf[start : min(end, start + (1 << 20))]).find(b"\n")
                if found >= 0:
                    i = start + found
                    break
                start += 1 << 20
        if i < 0:
            raise _StopScanError(
                f"pickle data is truncated at offset {self.base + pos}: {what} has no newline"
            )
        return i

    def _readline(self, pos: int, what: str, limit: int = _MAX_NAME) -> tuple[bytes, int]:
        """The argument line at ``pos`` (without its newline) and the offset after it;
        lines longer than ``limit`` come back empty (only their length matters)."""
        stop = self._line_end(pos, what)
        if stop - pos > limit:
            return b"", stop + 1
        return bytes(self.mv[pos:stop]), stop + 1

    def _text(self, start: int, end: int, op_pos: int) -> object:
        if end - start <= _SHORT_TEXT:
            try:
                return str(self.mv[start:end], "utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise _StopScanError(
                    f"invalid UTF-8 in a string at offset {self.base + op_pos}; "
                    "unpickling fails there"
                ) from None
        return _Blob(start, end, "utf8")

    def _str8(self, start: int, end: int) -> object:
        if end - start <= _SHORT_TEXT:
            raw = bytes(self.mv[start:end])
            if raw.isascii():
                return raw.decode("ascii")
        return _Blob(start, end, "str8")

    def _name(self, v: object) -> str | None:
        """A string usable as a module or global name, or ``None``."""
        if type(v) is str:
            return v
        if type(v) is slice and v.step != "bytes" and v.stop - v.start <= _MAX_NAME:
            raw = self.mv[v.start : v.stop]
            codec = {"utf8": "utf-8", "str8": "latin-1", "ruesc": "raw-unicode-escape"}
            try:
                return str(raw, codec.get(str(v.step), "latin-1"))
            except UnicodeDecodeError:
                return None
        return None

    def _bytes_of(self, v: object) -> tuple[memoryview | bytes, int] | None:
        """Static bytes of a value, with its offset in the stream, when knowable."""
        if type(v) is slice:
            if v.step in ("utf8", "ruesc"):
                return None
            return self.mv[v.start : v.stop], v.start
        if type(v) is _Obj and type(v.func) is _Global and type(v.args) is tuple:
            full = v.func.full
            args = v.args
            if full in _ENCODE and args:
                text = args[0]
                enc = args[1] if len(args) > 1 else "utf-8"
                if type(enc) is not str:
                    return None
                if type(text) is str:
                    try:
                        return text.encode(enc), v.pos
                    except (LookupError, UnicodeError):
                        return None
                if type(text) is slice and text.step in ("utf8", "ruesc"):
                    codec = "utf-8" if text.step == "utf8" else "raw-unicode-escape"
                    try:
                        raw = str(self.mv[text.start : text.stop], codec, "surrogatepass")
                        return raw.encode(enc), text.start
                    except (LookupError, UnicodeError):
                        return None
            if full in _BYTES_CTORS and args:
                return self._bytes_of(args[0])
        return None

    # ----------------------------------------------------------------- nesting
    def _nested(
        self, data: memoryview | bytes, offset: int, *, why: str, always: bool, pos: int
    ) -> PickleScan | None:
        """Scan a pickle embedded at ``offset``; report MLW-SUP-004 per the rules."""
        if self.depth + 1 > MAX_DEPTH:
            self._issue(
                RULE_EMBEDDED_PICKLE,
                pos,
                f"pickle nested deeper than {MAX_DEPTH} levels",
                f"{why}; it is nested more than {MAX_DEPTH} levels deep and was not scanned.",
            )
            return None
        if len(data) <= 1 << 20 and isinstance(data, memoryview):
            data = bytes(data)  # small: indexing bytes is faster than a memoryview
        inner = scan_pickle(
            data,
            path=self.path,
            member=self.member,
            base_offset=self.base + offset,
            policy=self.policy,
            depth=self.depth + 1,
        )
        for g in inner.globals:
            self._record(g)
        if always or inner.issues:
            detail = (
                "it imports " + ", ".join(sorted({i.construct for i in inner.issues}))
                if inner.issues
                else "nothing dangerous was found in it"
            )
            if not inner.complete:
                detail += f" (scan incomplete: {inner.error})"
            self._issue(
                RULE_EMBEDDED_PICKLE,
                pos,
                f"embedded pickle at offset {self.base + offset}",
                f"{why}; {detail}.",
            )
            for i in inner.issues:
                key = (i.rule_id, f"{i.construct}@{i.location}")
                if key not in self._reported:
                    self._reported.add(key)
                    self.issues.append(i)
        return inner

    def _maybe_hidden_pickle(self, start: int, end: int, pos: int) -> None:
        mv = self.mv
        if end - start >= 4 and mv[start] == 0x80 and 2 <= mv[start + 1] <= _HIGHEST_PROTOCOL:
            self._nested(
                mv[start:end],
                start,
                why="a byte string in the pickle holds another pickle",
                always=False,
                pos=pos,
            )

    # ----------------------------------------------------------------- calls
    def _call(self, func: object, args: object, pos: int, opcode: str) -> object:
        """The value of ``func(*args)``; report what is wrong with the call."""
        if type(func) is not _Global:
            if isinstance(func, _Opaque) and func.reported:
                return _Opaque("a call of an unresolved value", reported=True)
            self._hidden(
                pos,
                f"{opcode} of {_describe(func)}",
                f"{opcode} calls {_describe(func)}, a value computed while loading rather "
                "than an imported global: the scanner cannot know what it runs.",
            )
            return _Opaque("a call of a computed value", reported=True)
        kind = func.kind
        if self.watched:
            shallow = args if type(args) is tuple else (args,)
            if self.joblib and func.full != _RECONSTRUCTOR:
                for a in shallow:
                    if type(a) is _Global and a.kind == _K_WRAPPER:
                        raise _StopScanError(
                            f"joblib array wrapper passed to {func.full} at offset "
                            f"{self.base + pos}, which joblib never writes; refusing to "
                            "guess where its data is"
                        )
            self._escaped(shallow, pos)
        if kind == _K_PLAIN:
            return func.res
        if kind == _K_INVOKER and not self.watched and type(args) is tuple:
            wanted = _INVOKERS[func.full]
            if all(i >= len(args) or type(args[i]) is _Global for i in wanted) and not (
                func.full == _RECONSTRUCTOR and args and args[0].kind == _K_WRAPPER
            ):
                return func.res
        if kind == _K_GETATTR:
            return self._static_getattr(func, args, pos)
        if kind == _K_LOADER and type(args) is tuple and args:
            found = self._bytes_of(args[0])
            if found is not None:
                blob, offset = found
                self._nested(
                    blob,
                    offset,
                    why=f"{func.full} unpickles an embedded byte string when the file loads",
                    always=True,
                    pos=pos,
                )
        if kind == _K_INVOKER and type(args) is tuple:
            if (
                func.full == _RECONSTRUCTOR
                and args
                and type(args[0]) is _Global
                and args[0].kind == _K_WRAPPER
            ):
                # protocol 0/1: copyreg._reconstructor(NumpyArrayWrapper, object, None)
                plain = len(args) == 3 and args[2] is None and type(args[1]) is _Global
                if plain and args[1].full == "builtins.object":
                    return _Obj(args[0], (), "reconstructor", pos)
                return _Obj(args[0], None, "reconstructor-args", pos)
            for i in _INVOKERS.get(func.full, ()):
                if i < len(args):
                    a = args[i]
                    if type(a) is _Global or a is None:
                        continue
                    if isinstance(a, _Opaque) and a.reported:
                        continue
                    self._hidden(
                        pos,
                        f"{func.full} calling {_describe(a)}",
                        f"{func.full} is given {_describe(a)}, a value computed while "
                        "loading, and calls it.",
                    )
            return func.res
        return _Obj(func, args, opcode, pos)

    def _static_getattr(self, func: _Global, args: object, pos: int) -> object:
        if (
            type(args) is tuple
            and len(args) == 2
            and type(args[0]) is _Global
            and type(args[1]) is str
        ):
            owner: _Global = args[0]
            attr: str = args[1]
            module, name = owner.module, f"{owner.name}.{attr}"
            full = f"{module}.{name}"
            self._record(full)
            d = self._decide(module, name)
            self._report_decision(d, pos, f"getattr({owner.full}, {attr!r}) reaches")
            return _Global(module, name, full, d.allowed and owner.allowed, _kind_of(full), pos)
        d = decide("builtins", "getattr", self.policy)
        if not d.allowed:
            rule = d.rule if d.rule is not None else RULE_DANGEROUS_GLOBAL
            shown = ", ".join(_describe(a) for a in args) if type(args) is tuple else "?"
            self._issue(
                rule,
                pos,
                GETATTR,
                f"builtins.getattr({shown}) looks up an attribute that cannot be resolved "
                f"statically: {d.reason}.",
                d.severity,
            )
        return _Opaque("the result of builtins.getattr", reported=not d.allowed)

    def _mutate(self, target: object, pos: int, opcode: str) -> None:
        if type(target) is _Global:
            self._hidden(
                pos,
                f"{opcode} on {target.full}",
                f"{opcode} modifies the imported global {target.full} itself (monkey-"
                "patching a class or module while loading); benign pickles never do this.",
            )

    # ----------------------------------------------------------------- joblib
    def _dtype_info(self, dt: object) -> tuple[int, bool]:
        """(itemsize, hasobject) of a statically built ``numpy.dtype``."""
        bad = _StopScanError(
            "joblib array wrapper with a dtype the scanner cannot resolve statically"
        )
        if (
            type(dt) is not _Obj
            or type(dt.func) is not _Global
            or dt.func.kind != _K_DTYPE
            or dt.builds > 1
            or type(dt.args) is not tuple
            or not dt.args
            or type(dt.args[0]) is not str
        ):
            raise bad
        code = dt.args[0]
        state = dt.state
        letter, digits = code[:1], code[1:]
        if not digits.isdigit() and code not in ("?",):
            raise bad
        n = int(digits) if digits else 1
        if code in _FIXED_SIZES:
            size = _FIXED_SIZES[code]
            hasobject = letter == "O"
        elif letter == "S":
            size, hasobject = n, False
        elif letter == "U":
            size, hasobject = 4 * n, False
        elif letter == "V":
            size, hasobject = n, False
        else:
            raise bad
        flags_object: bool | None = None
        if state is not None:
            if type(state) is not tuple or len(state) < 8:
                raise bad
            subarray, names, fields, elsize, flags = (
                state[2],
                state[3],
                state[4],
                state[5],
                state[7],
            )
            if type(elsize) is not int or type(flags) is not int:
                raise bad
            if elsize not in (-1, size):
                raise bad
            flags_object = bool(flags & 1)
            if subarray is not None:
                if letter != "V" or type(subarray) is not tuple or len(subarray) != 2:
                    raise bad
                hasobject = self._dtype_info(subarray[0])[1]
            if fields is not None or names is not None:
                if letter != "V" or type(fields) is not _Dict or _is_big(fields):
                    raise bad
                for f in fields.values():
                    if type(f) is not tuple or len(f) < 2:
                        raise bad
                    hasobject = self._dtype_info(f[0])[1] or hasobject
            if flags_object != hasobject:
                raise bad
        elif letter == "V":
            raise bad
        return size, hasobject

    def _joblib_array(self, wrapper: _Obj, pos: int) -> int:
        """Skip (or scan) the array data that follows a wrapper's ``BUILD``; new offset."""
        where = self.base + pos
        if wrapper.builds > 1 or wrapper.how not in ("NEWOBJ", "reconstructor"):
            raise _StopScanError(
                f"joblib array wrapper at offset {where} is built in a way joblib never "
                "writes; refusing to guess where its data is"
            )
        if self.frame_end > pos:
            self._issue(
                RULE_MALFORMED,
                pos,
                "joblib array data inside a pickle frame",
                "joblib array data starts inside a pickle frame, where joblib's loader and "
                "scanners read different bytes (a parser differential); joblib never "
                "writes such files.",
            )
            raise _StopScanError(
                f"joblib array data at offset {where} starts inside a pickle frame"
            )
        state = wrapper.state
        if type(state) is not _Dict or _is_big(state):
            raise _StopScanError(f"joblib array wrapper at offset {where} has an unreadable state")
        items = state
        unknown = set(items) - _WRAPPER_KEYS
        if unknown or "shape" not in items or "dtype" not in items:
            raise _StopScanError(f"joblib array wrapper at offset {where} has an unexpected state")
        shape = items["shape"]
        if type(shape) is not tuple or not all(type(s) is int and s >= 0 for s in shape):
            raise _StopScanError(f"joblib array wrapper at offset {where} has a bad shape")
        count = 1
        for s in shape:
            count *= s
        if count >= 1 << 63:
            raise _StopScanError(f"joblib array wrapper at offset {where} has an overflowing shape")
        try:
            itemsize, hasobject = self._dtype_info(items["dtype"])
        except _StopScanError as exc:
            raise _StopScanError(f"{exc} (offset {where})") from None
        mv = self.mv
        if hasobject:
            self.object_arrays += 1
            inner = self._nested(
                mv[pos:],
                pos,
                why="a joblib object array (a pickle joblib loads with the same unpickler)",
                always=False,
                pos=pos,
            )
            if inner is None:
                raise _StopScanError(f"joblib object array at offset {where} nested too deep")
            if not inner.complete:
                raise _StopScanError(f"joblib object array at offset {where}: {inner.error}")
            return pos + inner.end
        if items.get("numpy_array_alignment_bytes") is not None:
            if pos >= len(mv):
                raise self._truncated(pos, "joblib array padding", 1)
            pos += 1 + mv[pos]
        nbytes = count * itemsize
        if pos + nbytes > len(mv):
            raise self._truncated(pos, "joblib array data", nbytes)
        self.arrays += 1
        self.array_bytes += nbytes
        return pos + nbytes

    # ----------------------------------------------------------------- main loop
    def run(self) -> PickleScan:
        mv = self.mv
        buf: Any = self.buf  # bytes (fast indexing and .decode) or a memoryview
        n = len(mv)
        base = self.base
        pos = 0
        op = -1
        stack: list[Any] = []
        marks: list[list[Any]] = []
        memo: dict[int, Any] = {}
        error: str | None = None
        end = 0
        complete = False
        op_pos = 0
        ga = 0  # builtins.getattr globals seen so far: turns on escape checks
        Global, Obj, Dict, Opaque = _Global, _Obj, _Dict, _Opaque
        is_bytes = not isinstance(buf, memoryview)
        u4, i4, u8, f8 = _u4, _i4, _u8, _f8
        try:
            while True:
                op_pos = pos
                op = buf[pos]
                pos += 1
                # Ordered by how often each opcode appears in real model files; the
                # split on 0x60 halves the comparisons for the rest.
                if op == 0x68:  # BINGET
                    stack.append(memo[buf[pos]])
                    pos += 1
                elif op == 0x94:  # MEMOIZE
                    memo[len(memo)] = stack[-1]
                elif op == 0x4B:  # BININT1
                    stack.append(buf[pos])
                    pos += 1
                elif op >= 0x60:
                    if op == 0x72:  # LONG_BINPUT
                        memo[u4(buf, pos)[0]] = stack[-1]
                        pos += 4
                    elif op == 0x71:  # BINPUT
                        memo[buf[pos]] = stack[-1]
                        pos += 1
                    elif op == 0x85:  # TUPLE1
                        stack[-1] = (stack[-1],)
                        if ga:
                            self._escaped(stack[-1], op_pos)
                    elif op == 0x62:  # BUILD
                        state = stack.pop()
                        inst = stack[-1]
                        if ga:
                            self._escaped((state,), op_pos)
                        t = type(inst)
                        if t is Obj:
                            inst.builds += 1
                            if inst.func.kind == _K_DTYPE:
                                inst.state = state
                            else:
                                pos = self._build(inst, state, pos, stack)
                        elif t is Global:
                            self._mutate(inst, op_pos, "BUILD")
                    elif op == 0x87:  # TUPLE3
                        c = stack.pop()
                        b = stack.pop()
                        stack[-1] = (stack[-1], b, c)
                        if ga:
                            self._escaped(stack[-1], op_pos)
                    elif op == 0x74:  # TUPLE
                        items = stack
                        stack = marks.pop()
                        if ga:
                            self._escaped(items, op_pos)
                        stack.append(tuple(items) if len(items) <= _MAX_ITEMS else Opaque("tuple"))
                    elif op == 0x89:  # NEWFALSE
                        stack.append(False)
                    elif op == 0x8C:  # SHORT_BINUNICODE
                        start = pos + 1
                        pos = start + buf[pos]
                        if pos > n:
                            raise self._truncated(start, "SHORT_BINUNICODE", pos - start)
                        if is_bytes:
                            stack.append(buf[start:pos].decode("utf-8", "surrogatepass"))
                        else:
                            stack.append(str(buf[start:pos], "utf-8", "surrogatepass"))
                    elif op == 0x86:  # TUPLE2
                        b = stack.pop()
                        stack[-1] = (stack[-1], b)
                        if ga:
                            self._escaped(stack[-1], op_pos)
                    elif op == 0x7D:  # EMPTY_DICT
                        stack.append(Dict())
                    elif op == 0x75:  # SETITEMS
                        items = stack
                        stack = marks.pop()
                        if len(items) % 2:
                            raise _StopScanError(
                                f"odd number of items for SETITEMS at offset {base + op_pos}"
                            )
                        self._setitems(stack[-1], items, op_pos, "SETITEMS")
                    elif op == 0x6A:  # LONG_BINGET
                        stack.append(memo[u4(buf, pos)[0]])
                        pos += 4
                    elif op == 0x81:  # NEWOBJ
                        args = stack.pop()
                        f = stack[-1]
                        if type(f) is Global and not f.kind and not ga:
                            stack[-1] = f.res
                        else:
                            stack[-1] = self._newobj(f, args, op_pos, "NEWOBJ")
                    elif op == 0x88:  # NEWTRUE
                        stack.append(True)
                    elif op == 0x93:  # STACK_GLOBAL
                        name_v = stack.pop()
                        stack[-1] = self._stack_global(stack[-1], name_v, op_pos)
                        ga = self.watched
                    elif op == 0x65:  # APPENDS
                        items = stack
                        stack = marks.pop()
                        if ga:
                            self._escaped(items, op_pos)
                        if type(stack[-1]) is Global:
                            self._mutate(stack[-1], op_pos, "APPENDS")
                    elif op == 0x61:  # APPEND
                        v = stack.pop()
                        if ga:
                            self._escaped((v,), op_pos)
                        if type(stack[-1]) is Global:
                            self._mutate(stack[-1], op_pos, "APPEND")
                    elif op == 0x73:  # SETITEM
                        value = stack.pop()
                        key = stack.pop()
                        self._setitems(stack[-1], [key, value], op_pos, "SETITEM")
                    elif op == 0x8E or op == 0x96:  # BINBYTES8, BYTEARRAY8
                        size = u8(buf, pos)[0]
                        start = pos + 8
                        pos = start + size
                        if pos > n:
                            raise self._truncated(start, _OPNAMES[op], size)
                        stack.append(slice(start, pos, "bytearray" if op == 0x96 else "bytes"))
                        if size >= 4 and buf[start] == 0x80:
                            self._maybe_hidden_pickle(start, pos, op_pos)
                    elif op == 0x95:  # FRAME
                        size = u8(buf, pos)[0]
                        pos += 8
                        if pos + size > n:
                            raise self._truncated(pos, "FRAME", size)
                        self.frame_end = pos + size
                    elif op == 0x80:  # PROTO
                        proto = buf[pos]
                        pos += 1
                        if proto > _HIGHEST_PROTOCOL:
                            raise _StopScanError(
                                f"unsupported pickle protocol {proto} at offset {base + op_pos}"
                            )
                        self.proto = proto
                    elif op == 0x63:  # GLOBAL
                        stack.append(self._global_op(pos, op_pos))
                        pos = self._after_global
                        ga = self.watched
                    elif op == 0x8D:  # BINUNICODE8
                        start = pos + 8
                        pos = start + u8(buf, pos)[0]
                        if pos > n:
                            raise self._truncated(start, "BINUNICODE8", pos - start)
                        stack.append(self._text(start, pos, op_pos))
                    else:
                        pos, stack = self._rare(op, op_pos, pos, stack, marks, memo)
                        ga = self.watched
                elif op == 0x52:  # REDUCE
                    args = stack.pop()
                    f = stack[-1]
                    if type(f) is Global and not ga and (
                        not f.kind
                        # the common invoker call: _reconstruct(<global class>, ...)
                        or (f.first_only and type(args) is tuple and args
                            and type(args[0]) is Global)
                    ):  # fmt: skip
                        stack[-1] = f.res
                    else:
                        stack[-1] = self._call(f, args, op_pos, "REDUCE")
                elif op == 0x28:  # MARK
                    marks.append(stack)
                    stack = []
                elif op == 0x58:  # BINUNICODE
                    start = pos + 4
                    pos = start + u4(buf, pos)[0]
                    if pos > n:
                        raise self._truncated(start, "BINUNICODE", pos - start)
                    if pos - start > _SHORT_TEXT:
                        stack.append(slice(start, pos, "utf8"))
                    elif is_bytes:
                        stack.append(buf[start:pos].decode("utf-8", "surrogatepass"))
                    else:
                        stack.append(str(buf[start:pos], "utf-8", "surrogatepass"))
                elif op == 0x4E:  # NONE
                    stack.append(None)
                elif op == 0x47:  # BINFLOAT
                    stack.append(f8(buf, pos)[0])
                    pos += 8
                elif op == 0x29:  # EMPTY_TUPLE
                    stack.append(())
                elif op == 0x43 or op == 0x42:  # SHORT_BINBYTES, BINBYTES
                    if op == 0x43:
                        start = pos + 1
                        pos = start + buf[pos]
                    else:
                        start = pos + 4
                        pos = start + u4(buf, pos)[0]
                    if pos > n:
                        raise self._truncated(start, _opname(op), pos - start)
                    stack.append(slice(start, pos, "bytes"))
                    if pos - start >= 4 and buf[start] == 0x80:
                        self._maybe_hidden_pickle(start, pos, op_pos)
                elif op == 0x4A:  # BININT
                    stack.append(i4(buf, pos)[0])
                    pos += 4
                elif op == 0x5D:  # EMPTY_LIST
                    stack.append(_LIST_VALUE)
                elif op == 0x4D:  # BININT2
                    stack.append(_u2(buf, pos)[0])
                    pos += 2
                elif op == 0x2E:  # STOP
                    top = stack[-1]
                    if ga:
                        self._escaped((top,), op_pos)
                    end = pos
                    if self.frame_end > pos:
                        self._issue(
                            RULE_MALFORMED,
                            op_pos,
                            "STOP inside a pickle frame",
                            "The pickle's last frame runs past STOP; loaders that read the "
                            "stream from a file resume after the frame while others resume "
                            "after STOP (a parser differential benign writers never create).",
                        )
                        end = self.frame_end
                    complete = True
                    break
                else:
                    pos, stack = self._rare(op, op_pos, pos, stack, marks, memo)
                    ga = self.watched
        except _StopScanError as exc:
            error = str(exc)
            end = op_pos
        except IndexError:
            if pos >= n and op not in _ARGLESS:
                error = str(self._truncated(pos, _opname(op), 1))
            elif op_pos >= n:
                error = (
                    f"pickle data is truncated at offset {base + op_pos}: "
                    "the stream ends before STOP"
                )
            elif op in _MARK_OPS and not marks:
                error = _no_mark(base + op_pos, _opname(op))
            else:
                error = _underflow(base + op_pos, _opname(op))
            end = op_pos
        except KeyError as exc:
            error = (
                f"memo key {exc.args[0]} read at offset {base + op_pos} was never stored; "
                "unpickling fails there"
            )
            end = op_pos
        except struct.error:
            error = str(self._truncated(pos, _opname(op), 8))
            end = op_pos
        except UnicodeDecodeError:
            error = f"invalid UTF-8 in a string at offset {base + op_pos}; unpickling fails there"
            end = op_pos
        except RecursionError:  # pragma: no cover - needs a pathological dtype nesting
            error = f"structure nested too deeply at offset {base + op_pos}"
            end = op_pos
        if error is not None:
            where = f"{self.path}:{self.member}" if self.member else self.path
            error = f"{where}: {error}"
        if self.arrays:
            self.notes.append(
                f"joblib: {self.arrays} array payload(s) skipped ({self.array_bytes} bytes)"
            )
        if self.object_arrays:
            self.notes.append(
                f"joblib: {self.object_arrays} object array(s) scanned as nested pickles"
            )
        return PickleScan(
            issues=self.issues,
            globals=self.globals,
            end=end,
            complete=complete,
            error=error,
            notes=self.notes,
        )

    def _build(self, inst: _Obj, state: object, pos: int, stack: list[Any]) -> int:
        """``BUILD`` on a tracked object other than a dtype (a joblib array wrapper)."""
        func = inst.func
        kind = func.kind if type(func) is _Global else _K_PLAIN
        if kind == _K_DTYPE:
            inst.state = state
        elif kind == _K_WRAPPER:
            inst.state = state
            if self.joblib:
                pos = self._joblib_array(inst, pos)
                stack[-1] = _Opaque("a numpy array")
        return pos

    def _global_op(self, pos: int, op_pos: int) -> _Global:
        raw_module, pos = self._readline(pos, "GLOBAL module")
        raw_name, pos = self._readline(pos, "GLOBAL name")
        self._after_global = pos
        try:
            module = raw_module.decode("utf-8")
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise _StopScanError(
                f"GLOBAL at offset {self.base + op_pos} names a module that is not UTF-8; "
                "unpickling fails there"
            ) from None
        return self._import(module, name, op_pos, "GLOBAL")

    def _get(self, memo: dict[int, Any], key: int, op_pos: int) -> Any:
        try:
            v = memo[key]
        except KeyError:
            raise _StopScanError(
                f"memo key {key} read at offset {self.base + op_pos} was never stored; "
                "unpickling fails there"
            ) from None
        return v

    def _setitems(self, target: object, items: list[Any], op_pos: int, opcode: str) -> None:
        if self.watched:
            self._escaped(items, op_pos)
        if type(target) is _Dict:
            if target.big:
                return
            if len(target) + len(items) // 2 > _MAX_ITEMS:
                target.clear()
                target.big = True
            else:
                for i in range(0, len(items), 2):
                    key = items[i]
                    if type(key) is str:
                        target[key] = items[i + 1]
                    else:
                        with contextlib.suppress(TypeError):  # unhashable: a byte string
                            target[key] = items[i + 1]
        else:
            self._mutate(target, op_pos, opcode)

    def _newobj(self, cls: object, args: object, op_pos: int, opcode: str) -> object:
        if type(cls) is not _Global:
            if isinstance(cls, _Opaque) and cls.reported:
                return _Opaque("an instance of an unresolved class", reported=True)
            self._hidden(
                op_pos,
                f"{opcode} of {_describe(cls)}",
                f"{opcode} instantiates {_describe(cls)}, a value computed while loading "
                "rather than an imported class.",
            )
            return _Opaque("an instance of a computed class", reported=True)
        if self.watched:
            self._escaped(args if type(args) is tuple else (args,), op_pos)
        if cls.kind == _K_GETATTR:
            self._escaped((cls,), op_pos)
        if cls.kind == _K_WRAPPER and args == ():
            return _Obj(cls, args, "NEWOBJ", op_pos)
        if cls.kind == _K_WRAPPER:
            return _Obj(cls, None, "NEWOBJ-args", op_pos)
        return cls.res

    def _stack_global(self, module_v: object, name_v: object, op_pos: int) -> object:
        module = self._name(module_v)
        name = self._name(name_v)
        if module is None or name is None:
            self._hidden(
                op_pos,
                f"STACK_GLOBAL {_describe(module_v)}.{_describe(name_v)}",
                "STACK_GLOBAL imports a name that is not a constant string in the pickle "
                f"(module {_describe(module_v)}, name {_describe(name_v)}): it is computed "
                "while loading, so no scanner can tell what is imported.",
            )
            return _Opaque("a global with a computed name", reported=True)
        return self._import(module, name, op_pos, "STACK_GLOBAL")

    def _rare(
        self,
        op: int,
        op_pos: int,
        pos: int,
        stack: list[Any],
        marks: list[list[Any]],
        memo: dict[int, Any],
    ) -> tuple[int, list[Any]]:
        """Every other opcode; returns the new offset and the (possibly new) stack."""
        mv = self.mv
        n = len(mv)
        base = self.base
        if op == 0x30:  # POP
            if stack:
                stack.pop()
            elif marks:
                stack = marks.pop()
            else:
                raise _StopScanError(_underflow(base + op_pos, "POP"))
        elif op == 0x31:  # POP_MARK
            if not marks:
                raise _StopScanError(_no_mark(base + op_pos, "POP_MARK"))
            stack = marks.pop()
        elif op == 0x32:  # DUP
            if not stack:
                raise _StopScanError(_underflow(base + op_pos, "DUP"))
            stack.append(stack[-1])
        elif op == 0x8F:  # EMPTY_SET
            stack.append(_Opaque(_SET))
        elif op == 0x90:  # ADDITEMS
            if not marks:
                raise _StopScanError(_no_mark(base + op_pos, "ADDITEMS"))
            items = stack
            stack = marks.pop()
            if not stack:
                raise _StopScanError(_underflow(base + op_pos, "ADDITEMS"))
            if self.watched:
                self._escaped(items, op_pos)
            self._mutate(stack[-1], op_pos, "ADDITEMS")
        elif op == 0x91:  # FROZENSET
            if not marks:
                raise _StopScanError(_no_mark(base + op_pos, "FROZENSET"))
            items = stack
            stack = marks.pop()
            if self.watched:
                self._escaped(items, op_pos)
            stack.append(_Opaque("frozenset"))
        elif op == 0x6C:  # LIST
            if not marks:
                raise _StopScanError(_no_mark(base + op_pos, "LIST"))
            items = stack
            stack = marks.pop()
            if self.watched:
                self._escaped(items, op_pos)
            stack.append(_LIST_VALUE)
        elif op == 0x64:  # DICT
            if not marks:
                raise _StopScanError(_no_mark(base + op_pos, "DICT"))
            items = stack
            stack = marks.pop()
            if len(items) % 2:
                raise _StopScanError(f"odd number of items for DICT at offset {base + op_pos}")
            d = _Dict()
            self._setitems(d, items, op_pos, "DICT")
            stack.append(d)
        elif op == 0x92:  # NEWOBJ_EX
            if len(stack) < 3:
                raise _StopScanError(_underflow(base + op_pos, "NEWOBJ_EX"))
            kwargs = stack.pop()
            args = stack.pop()
            if self.watched:
                self._escaped((kwargs,), op_pos)
            stack[-1] = self._newobj(stack[-1], args, op_pos, "NEWOBJ_EX")
        elif op == 0x6F:  # OBJ
            if not marks:
                raise _StopScanError(_no_mark(base + op_pos, "OBJ"))
            items = stack
            stack = marks.pop()
            if not items:
                raise _StopScanError(_underflow(base + op_pos, "OBJ"))
            if self.watched:
                self._escaped(items[1:], op_pos)
            stack.append(self._call(items[0], tuple(items[1:]), op_pos, "OBJ"))
        elif op == 0x69:  # INST
            raw_module, pos = self._readline(pos, "INST module")
            raw_name, pos = self._readline(pos, "INST name")
            try:
                module = raw_module.decode("ascii")
                name = raw_name.decode("ascii")
            except UnicodeDecodeError:
                raise _StopScanError(
                    f"INST at offset {base + op_pos} names a class that is not ASCII; "
                    "unpickling fails there"
                ) from None
            cls = self._import(module, name, op_pos, "INST")  # imported before the MARK pop
            if not marks:
                raise _StopScanError(_no_mark(base + op_pos, "INST"))
            items = stack
            stack = marks.pop()
            if self.watched:
                self._escaped(items, op_pos)
            stack.append(self._call(cls, tuple(items), op_pos, "INST"))
        elif op == 0x82 or op == 0x83 or op == 0x84:  # EXT1, EXT2, EXT4
            width = {0x82: 1, 0x83: 2, 0x84: 4}[op]
            if pos + width > n:
                raise self._truncated(pos, _OPNAMES[op], width)
            code = mv[pos] if width == 1 else (_u2(mv, pos)[0] if width == 2 else _i4(mv, pos)[0])
            pos += width
            if code <= 0:
                raise _StopScanError(f"EXT code {code} at offset {base + op_pos} is invalid")
            self._hidden(
                op_pos,
                f"{_OPNAMES[op]} extension code {code}",
                f"{_OPNAMES[op]} imports the global registered as extension code {code} in "
                "the loading process's copyreg table, which the file does not name; benign "
                "model files never use extension codes.",
            )
            stack.append(_Opaque(f"extension code {code}", reported=True))
        elif op == 0x49:  # INT
            line, pos = self._readline(pos, "INT")
            if line == b"00":
                stack.append(False)
            elif line == b"01":
                stack.append(True)
            else:
                stack.append(_parse_int(line, base + op_pos, "INT"))
        elif op == 0x4C:  # LONG
            line, pos = self._readline(pos, "LONG")
            if line.endswith(b"L"):
                line = line[:-1]
            stack.append(_parse_int(line, base + op_pos, "LONG"))
        elif op == 0x8A or op == 0x8B:  # LONG1, LONG4
            if op == 0x8A:
                if pos >= n:
                    raise self._truncated(pos, "LONG1", 1)
                size = mv[pos]
                pos += 1
            else:
                if pos + 4 > n:
                    raise self._truncated(pos, "LONG4", 4)
                size = _i4(mv, pos)[0]
                pos += 4
                if size < 0:
                    raise _StopScanError(f"LONG4 with negative size at offset {base + op_pos}")
            if pos + size > n:
                raise self._truncated(pos, _OPNAMES[op], size)
            if size <= 64:
                stack.append(int.from_bytes(mv[pos : pos + size], "little", signed=True))
            else:
                stack.append(_Opaque("a long integer"))
            pos += size
        elif op == 0x46:  # FLOAT
            line, pos = self._readline(pos, "FLOAT")
            try:
                stack.append(float(line))
            except ValueError:
                raise _StopScanError(f"bad FLOAT at offset {base + op_pos}") from None
        elif op == 0x53:  # STRING
            start = pos
            line, pos = self._readline(pos, "STRING", _SHORT_TEXT)
            if pos - start - 1 > _SHORT_TEXT:
                stack.append(_Opaque("a long string"))
                return pos, stack
            if len(line) < 2 or line[0] != line[-1] or line[0] not in b"\"'":
                raise _StopScanError(f"STRING at offset {base + op_pos} is not quoted")
            if len(line) <= _SHORT_TEXT:
                try:
                    raw = codecs.escape_decode(line[1:-1])[0]
                except ValueError:
                    raise _StopScanError(f"bad STRING escape at offset {base + op_pos}") from None
                stack.append(raw.decode("ascii") if raw.isascii() else _Opaque("a string"))
            else:
                stack.append(_Opaque("a long string"))
        elif op == 0x54 or op == 0x55:  # BINSTRING, SHORT_BINSTRING
            if op == 0x54:
                if pos + 4 > n:
                    raise self._truncated(pos, "BINSTRING", 4)
                size = _i4(mv, pos)[0]
                if size < 0:
                    raise _StopScanError(f"BINSTRING with negative size at offset {base + op_pos}")
                start = pos + 4
            else:
                if pos >= n:
                    raise self._truncated(pos, "SHORT_BINSTRING", 1)
                size = mv[pos]
                start = pos + 1
            pos = start + size
            if pos > n:
                raise self._truncated(start, _OPNAMES[op], size)
            stack.append(self._str8(start, pos))
            if size >= 4 and mv[start] == 0x80:
                self._maybe_hidden_pickle(start, pos, op_pos)
        elif op == 0x56:  # UNICODE
            start = pos
            line, pos = self._readline(pos, "UNICODE", _SHORT_TEXT)
            if pos - start - 1 <= _SHORT_TEXT:
                try:
                    stack.append(line.decode("raw-unicode-escape"))
                except UnicodeDecodeError:
                    raise _StopScanError(f"bad UNICODE at offset {base + op_pos}") from None
            else:
                stack.append(slice(start, pos - 1, "ruesc"))  # raw-unicode-escape text
        elif op == 0x67:  # GET
            line, pos = self._readline(pos, "GET")
            stack.append(self._get(memo, _parse_int(line, base + op_pos, "GET"), op_pos))
        elif op == 0x70:  # PUT
            line, pos = self._readline(pos, "PUT")
            key = _parse_int(line, base + op_pos, "PUT")
            if key < 0:
                raise _StopScanError(f"negative PUT argument at offset {base + op_pos}")
            if not stack:
                raise _StopScanError(_underflow(base + op_pos, "PUT"))
            memo[key] = stack[-1]
        elif op == 0x50:  # PERSID
            pos = self._line_end(pos, "PERSID") + 1
            stack.append(_Opaque("a persistent object"))
        elif op == 0x51:  # BINPERSID
            if not stack:
                raise _StopScanError(_underflow(base + op_pos, "BINPERSID"))
            pid = stack[-1]
            if self.watched:
                self._escaped((pid,), op_pos)
            # Legacy torch.save stores classes as ("module", cls, file, source) and its
            # persistent_load returns cls: keep the (already decided) global.
            if type(pid) is tuple and len(pid) >= 2 and pid[0] == "module":
                stack[-1] = pid[1] if type(pid[1]) is _Global else _Opaque("a class")
            else:
                stack[-1] = _Opaque("a persistent object")
        elif op == 0x97:  # NEXT_BUFFER
            stack.append(_Opaque("an out-of-band buffer"))
        elif op == 0x98:  # READONLY_BUFFER
            if not stack:
                raise _StopScanError(_underflow(base + op_pos, "READONLY_BUFFER"))
        else:
            raise _StopScanError(f"invalid pickle opcode 0x{op:02x} at offset {base + op_pos}")
        return pos, stack


_FIXED_SIZES = {
    "?": 1,
    "b1": 1,
    "i1": 1,
    "i2": 2,
    "i4": 4,
    "i8": 8,
    "u1": 1,
    "u2": 2,
    "u4": 4,
    "u8": 8,
    "f2": 2,
    "f4": 4,
    "f8": 8,
    "f16": 16,
    "c8": 8,
    "c16": 16,
    "c32": 32,
    "M8": 8,
    "m8": 8,
    "O8": 8,
    "O4": 4,
}
_WRAPPER_KEYS = frozenset(
    {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}
)
_OPNAMES = {
    0x42: "BINBYTES",
    0x8E: "BINBYTES8",
    0x96: "BYTEARRAY8",
    0x58: "BINUNICODE",
    0x8D: "BINUNICODE8",
    0x82: "EXT1",
    0x83: "EXT2",
    0x84: "EXT4",
    0x8A: "LONG1",
    0x8B: "LONG4",
    0x54: "BINSTRING",
    0x55: "SHORT_BINSTRING",
}


_ARGLESS = frozenset(
    b"(.0125Nadeslt)]}abRsuQ\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98"
)
_MARK_OPS = frozenset(b"12edltuoi\x90\x91")


def _opname(op: int) -> str:
    import pickletools

    for info in pickletools.opcodes:
        if ord(info.code) == op:
            return info.name
    return f"opcode 0x{op:02x}"


def _is_reconstructor_args(values: tuple[object, ...]) -> bool:
    """``(NumpyArrayWrapper, builtins.object, None)``: joblib's protocol 0/1 form."""
    return (
        len(values) == 3
        and type(values[0]) is _Global
        and values[0].kind == _K_WRAPPER
        and type(values[1]) is _Global
        and values[1].full == "builtins.object"
        and values[2] is None
    )


def _is_big(d: _Dict) -> bool:
    return d.big


def _underflow(offset: int, opcode: str) -> str:
    return f"stack underflow at {opcode} (offset {offset}); unpickling fails there"


def _no_mark(offset: int, opcode: str) -> str:
    return f"{opcode} at offset {offset} has no MARK to pop; unpickling fails there"


def _parse_int(line: bytes, offset: int, opcode: str) -> int:
    try:
        return int(line, 0) if opcode == "INT" else int(line)
    except ValueError:
        raise _StopScanError(f"bad {opcode} argument at offset {offset}") from None
