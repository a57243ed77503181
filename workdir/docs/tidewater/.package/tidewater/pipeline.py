"""Tide and Stage: declaring a linear chain of typed stages, and the checks run before anything runs."""

from __future__ import annotations

import collections.abc
import functools
import inspect
import re
import types
import typing
from typing import Any, Callable

from .errors import DuplicateStageError, EmptyTideError, InvalidNameError, TideTypeError
from .retry import RetryPolicy
from .runner import run_tide

_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


def _records_given_arguments(func):
    """Keep the documented signature and defaults, and hand `func` the names of the arguments the caller gave
    as `_given` (a stage's own `timeout` wins over `stage.timeout` in tidewater.toml only when it was given)."""
    signature = inspect.signature(func)
    public = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "_given"])

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        given = frozenset(public.bind(*args, **kwargs).arguments) - {"self", "func"}
        return func(*args, _given=given, **kwargs)

    wrapper.__signature__ = public
    return wrapper


def check_name(name: Any, what: str) -> None:
    """TW-1104 unless `name` has only lowercase letters, digits and underscores, at most 64 characters."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidNameError(f"invalid {what} name {name!r}: use only lowercase letters, digits and underscores, "
                               "at most 64 characters", stage=name if what == "stage" and isinstance(name, str) else None)


class Stage:
    """A single-argument callable with a name, declared types, a timeout, a retry policy and flags."""

    @_records_given_arguments
    def __init__(self, func: Callable[[Any], Any], *, name: str | None = None, input_type: Any = Any,
                 output_type: Any = Any, timeout: float = 300, retry: RetryPolicy | None = None, cache: bool = False,
                 map: bool = False, _given: frozenset = frozenset()):
        self._given = _given
        if not callable(func):
            raise TypeError(f"Stage needs a callable, not {func!r}")
        try:
            inspect.signature(func).bind(None)
        except TypeError:
            raise TypeError(f"stage function {getattr(func, '__name__', func)!r} must take exactly one positional "
                            "argument") from None
        except ValueError:  # builtins without a signature
            pass
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, not {retry!r}")
        self.func = func
        self.name = name if name is not None else getattr(func, "__name__", None)
        check_name(self.name, "stage")
        self.input_type, self.output_type = input_type, output_type
        self.timeout, self.retry, self.cache, self.map = timeout, retry, bool(cache), bool(map)
        self.__doc__ = getattr(func, "__doc__", None)
        self.__wrapped__ = func

    def call(self, value: Any) -> Any:
        """Run the stage function once on `value`, outside of any tide, without retries or caching."""
        return self.func(value)

    __call__ = call

    def __repr__(self) -> str:
        return f"Stage({self.name!r}, map={self.map}, timeout={self.timeout!r})"


@_records_given_arguments
def stage(func: Callable[[Any], Any] | None = None, *, name: str | None = None, input_type: Any = Any,
          output_type: Any = Any, timeout: float = 300, retry: RetryPolicy | None = None, cache: bool = False,
          map: bool = False, _given: frozenset = frozenset()):
    """Decorator that turns a function into a Stage: `@stage` or `@stage(output_type=..., ...)`."""
    arguments = dict(name=name, input_type=input_type, output_type=output_type, timeout=timeout, retry=retry,
                     cache=cache, map=map)
    given = {key: value for key, value in arguments.items() if key in _given}

    def wrap(function: Callable[[Any], Any]) -> Stage:
        return Stage(function, **given)

    return wrap(func) if func is not None else wrap


class Tide:
    """An ordered chain of stages; each stage receives the output of the one before it."""

    @_records_given_arguments
    def __init__(self, name: str, stages: list[Stage] | None = None, *, description: str = "",
                 tags: list[str] | None = None, fail_fast: bool = True, _given: frozenset = frozenset()):
        self._given = _given
        check_name(name, "tide")
        self.name, self.description = name, description
        self.tags = list(tags or [])
        self.fail_fast = fail_fast
        self.stages: list[Stage] = []
        for item in stages or []:
            self._append(item)
        self._check()

    def add_stage(self, stage: Stage) -> Tide:
        """Append a stage and return the tide, so calls can be chained."""
        self._append(stage)
        try:
            self._check()
        except Exception:
            self.stages.pop()
            raise
        return self

    def validate(self) -> None:
        """Re-run the name and type checks (and refuse an empty tide); raises on the first problem."""
        check_name(self.name, "tide")
        if not self.stages:
            raise EmptyTideError(f"tide {self.name!r} has no stages; add at least one before calling run()")
        self._check()

    @_records_given_arguments
    def run(self, inputs: Any = None, *, max_workers: int = 4, dry_run: bool = False, timeout: float | None = None,
            _given: frozenset = frozenset()):
        """Run the tide and return a TideResult; stage errors are collected into `result.errors`."""
        return run_tide(self, inputs, max_workers=max_workers if "max_workers" in _given else None,
                        dry_run=dry_run, timeout=timeout)

    def __len__(self) -> int:
        return len(self.stages)

    def __repr__(self) -> str:
        return f"Tide({self.name!r}, stages={[s.name for s in self.stages]!r})"

    def _append(self, item: Stage) -> None:
        if not isinstance(item, Stage):
            raise TypeError(f"tide stages must be Stage objects (use @stage or Stage(func)), not {item!r}")
        self.stages.append(item)

    def _check(self) -> None:
        seen = set()
        for item in self.stages:
            check_name(item.name, "stage")
            if item.name in seen:
                raise DuplicateStageError(f"duplicate stage name {item.name!r} in tide {self.name!r}; pass an "
                                          "explicit name= to one of the stages", stage=item.name)
            seen.add(item.name)
        for before, after in zip(self.stages, self.stages[1:]):
            produced = list[before.output_type] if before.map else before.output_type
            expected = collections.abc.Iterable[after.input_type] if after.map else after.input_type
            if not types_fit(produced, expected):
                raise TideTypeError(f"stage {after.name!r} expects {type_name(expected)} but stage {before.name!r} "
                                    f"produces {type_name(produced)}", stage=after.name)


def type_name(kind: Any) -> str:
    return kind.__name__ if isinstance(kind, type) and not typing.get_args(kind) else repr(kind).replace("typing.", "")


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def types_fit(produced: Any, expected: Any) -> bool:
    """Whether a value declared as `produced` is acceptable where `expected` is declared (Any fits everything)."""
    produced = type(None) if produced is None else produced
    expected = type(None) if expected is None else expected
    if produced is Any or expected is Any or expected is object:
        return True
    if _is_union(produced):
        return all(types_fit(member, expected) for member in typing.get_args(produced))
    if _is_union(expected):
        return any(types_fit(produced, member) for member in typing.get_args(expected))
    origin_out = typing.get_origin(produced) or produced
    origin_in = typing.get_origin(expected) or expected
    if not (origin_out == origin_in or (isinstance(origin_out, type) and isinstance(origin_in, type)
                                        and issubclass(origin_out, origin_in))):
        return False
    args_out, args_in = typing.get_args(produced), typing.get_args(expected)
    if not args_out or not args_in:
        return True
    if origin_out in (dict, collections.abc.Mapping) or len(args_out) == len(args_in):
        return all(types_fit(a, b) for a, b in zip(args_out, args_in))
    # list[str] produced, Iterable[str] expected and similar one-argument views
    return types_fit(args_out[0], args_in[0])
