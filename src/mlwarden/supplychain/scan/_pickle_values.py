"""Read plain values out of a pickle *without unpickling it*.

Some containers need a value that a pickle holds to find their way through the
file: legacy ``torch.save`` files write the size and type of each tensor storage in
persistent ids (``('storage', torch.FloatStorage, '0', 'cpu', 6)``) and the order of
the raw storages in a pickled list of keys. This module walks the opcodes with
:func:`pickletools.genops` and simulates the stack with inert values: strings,
numbers, tuples, lists and dicts of them, :class:`Global` for a global reference and
:data:`OPAQUE` for anything else (the result of a call, an object). Nothing is
imported or called, so it is safe on any input; it is *not* a security check (the
scan of every pickle is :func:`mlwarden.supplychain.pickle_scan.scan_pickle`'s job).
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OPAQUE", "Global", "MemoryReader", "PickleValues", "evaluate"]


class _Opaque:
    """A value the simulation does not model (an object, a call's result)."""

    def __repr__(self) -> str:
        return "OPAQUE"


OPAQUE: Any = _Opaque()


@dataclass(frozen=True)
class Global:
    """A reference to ``module.name`` (GLOBAL / STACK_GLOBAL), never imported."""

    module: str
    name: str

    @property
    def dotted(self) -> str:
        """``module.name``."""
        return f"{self.module}.{self.name}"


@dataclass
class PickleValues:
    """What :func:`evaluate` found.

    Parameters
    ----------
    value : object
        The pickle's result as inert values (or :data:`OPAQUE`).
    persistent_ids : list
        Every persistent id (PERSID / BINPERSID argument) in order.
    end : int
        Offset just past STOP.
    """

    value: Any = None
    persistent_ids: list[Any] = field(default_factory=list)
    end: int = 0


class MemoryReader:
    """A read-only file over a buffer that copies only what is read (no ``BytesIO`` copy)."""

    def __init__(self, data: bytes | memoryview) -> None:
        self._mv = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when ``n < 0``)."""
        end = len(self._mv) if n < 0 else min(len(self._mv), self._pos + n)
        chunk = bytes(self._mv[self._pos : end])
        self._pos = end
        return chunk

    def readline(self, limit: int = -1) -> bytes:
        """Up to and including the next newline."""
        end = len(self._mv) if limit < 0 else min(len(self._mv), self._pos + limit)
        start = self._pos
        step = 256
        while start < end:
            stop = min(end, start + step)
            hit = bytes(self._mv[start:stop]).find(b"\n")
            if hit >= 0:
                return self.read(start + hit + 1 - self._pos)
            start = stop
            step = min(step * 4, 1 << 20)
        return self.read(end - self._pos)

    def tell(self) -> int:
        """The current offset."""
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        """Move to ``pos`` (``whence`` 0, 1 or 2 as for files)."""
        base = {0: 0, 1: self._pos, 2: len(self._mv)}[whence]
        self._pos = max(0, min(len(self._mv), base + pos))
        return self._pos


def evaluate(data: bytes | memoryview, max_ops: int = 10_000_000) -> PickleValues:
    """Simulate one pickle starting at ``data[0]``.

    Raises
    ------
    ValueError
        If the data is not a well-formed pickle (bad opcode, truncated, stack
        underflow) or has more than ``max_ops`` opcodes.
    """
    out = PickleValues()
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        if not marks:
            raise ValueError("stack underflow: no MARK")
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def pop(n: int = 1) -> list[Any]:
        if len(stack) - (marks[-1] if marks else 0) < n:
            raise ValueError("stack underflow")
        items = stack[len(stack) - n :]
        del stack[len(stack) - n :]
        return items

    stream = MemoryReader(data)
    try:
        for n_ops, (op, arg, pos) in enumerate(pickletools.genops(stream)):  # type: ignore[arg-type]
            if n_ops >= max_ops:
                raise ValueError(f"more than {max_ops} opcodes")
            name = op.name
            if name == "STOP":
                if len(stack) != 1 or marks:
                    raise ValueError("STOP with an unbalanced stack")
                out.value = stack[0]
                out.end = (pos or 0) + 1
                return out
            if name in ("PROTO", "FRAME", "PUT", "BINPUT", "LONG_BINPUT"):
                if name.endswith("PUT"):
                    if not stack:
                        raise ValueError("PUT on an empty stack")
                    memo[_int(arg)] = stack[-1]
                continue
            if name == "MEMOIZE":
                if not stack:
                    raise ValueError("MEMOIZE on an empty stack")
                memo[len(memo)] = stack[-1]
                continue
            if name in ("GET", "BINGET", "LONG_BINGET"):
                if _int(arg) not in memo:
                    raise ValueError(f"memo key {arg} was never stored")
                stack.append(memo[_int(arg)])
                continue
            if name == "MARK":
                marks.append(len(stack))
                continue
            if name in ("GLOBAL", "INST"):
                module, _, qual = str(arg).partition(" ")
                if name == "GLOBAL":
                    stack.append(Global(module, qual))
                else:
                    pop_mark()
                    stack.append(OPAQUE)
                continue
            if name == "STACK_GLOBAL":
                module, qual = pop(2)
                stack.append(
                    Global(module, qual)
                    if isinstance(module, str) and isinstance(qual, str)
                    else OPAQUE
                )
                continue
            if name in ("PERSID", "BINPERSID"):
                pid = arg if name == "PERSID" else pop(1)[0]
                out.persistent_ids.append(pid)
                stack.append(OPAQUE)
                continue
            if name in ("EXT1", "EXT2", "EXT4"):
                stack.append(OPAQUE)  # the copyreg extension registry: not modelled
                continue
            if op.arg is not None and not op.stack_before and len(op.stack_after) == 1:
                # A literal: int, float, str, bytes, bool/int, long.
                stack.append(arg)
                continue
            literal = _STRUCTURAL.get(name)
            if literal is not None:
                literal(stack, pop, pop_mark)
                continue
            # Anything else: generic stack effect, results are opaque.
            before = op.stack_before
            if pickletools.markobject in before:
                pop_mark()
                fixed = before[: before.index(pickletools.markobject)]
            else:
                fixed = list(before)
            if fixed:
                pop(len(fixed))
            stack.extend(OPAQUE for _ in op.stack_after)
    except ValueError:
        raise
    except Exception as exc:  # genops raises several types on junk
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    raise ValueError("the pickle ends before STOP")


def _int(arg: Any) -> int:
    if not isinstance(arg, int):
        raise ValueError(f"bad memo key {arg!r:.40}")
    return arg


def _tuple_n(n: int) -> Any:
    def f(stack: list[Any], pop: Any, pop_mark: Any) -> None:
        stack.append(tuple(pop(n)) if n else ())

    return f


def _empty(kind: type) -> Any:
    def f(stack: list[Any], pop: Any, pop_mark: Any) -> None:
        stack.append(kind())

    return f


def _from_mark(kind: type) -> Any:
    def f(stack: list[Any], pop: Any, pop_mark: Any) -> None:
        stack.append(kind(pop_mark()))

    return f


def _none(stack: list[Any], pop: Any, pop_mark: Any) -> None:
    stack.append(None)


def _true(stack: list[Any], pop: Any, pop_mark: Any) -> None:
    stack.append(True)


def _false(stack: list[Any], pop: Any, pop_mark: Any) -> None:
    stack.append(False)


def _append(stack: list[Any], pop: Any, pop_mark: Any) -> None:
    (item,) = pop(1)
    target = pop(1)[0]
    if isinstance(target, list):
        target.append(item)
    stack.append(target)


def _appends(stack: list[Any], pop: Any, pop_mark: Any) -> None:
    items = pop_mark()
    target = pop(1)[0]
    if isinstance(target, list):
        target.extend(items)
    stack.append(target)


def _dict(stack: list[Any], pop: Any, pop_mark: Any) -> None:
    items = pop_mark()
    stack.append(_pairs_to_dict({}, items))


def _setitem(stack: list[Any], pop: Any, pop_mark: Any) -> None:
    key, value = pop(2)
    target = pop(1)[0]
    stack.append(_pairs_to_dict(target, [key, value]))


def _setitems(stack: list[Any], pop: Any, pop_mark: Any) -> None:
    items = pop_mark()
    target = pop(1)[0]
    stack.append(_pairs_to_dict(target, items))


def _pairs_to_dict(target: Any, items: list[Any]) -> Any:
    if len(items) % 2:
        raise ValueError("odd number of items for a dict")
    if not isinstance(target, dict):
        return target
    for k, v in zip(items[::2], items[1::2], strict=True):
        try:
            target[k] = v
        except TypeError:  # unhashable key: the result is opaque
            return OPAQUE
    return target


_STRUCTURAL: dict[str, Any] = {
    "NONE": _none,
    "NEWTRUE": _true,
    "NEWFALSE": _false,
    "EMPTY_TUPLE": _tuple_n(0),
    "TUPLE1": _tuple_n(1),
    "TUPLE2": _tuple_n(2),
    "TUPLE3": _tuple_n(3),
    "TUPLE": _from_mark(tuple),
    "EMPTY_LIST": _empty(list),
    "LIST": _from_mark(list),
    "APPEND": _append,
    "APPENDS": _appends,
    "EMPTY_DICT": _empty(dict),
    "DICT": _dict,
    "SETITEM": _setitem,
    "SETITEMS": _setitems,
}
