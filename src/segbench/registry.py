"""One name -> builder registry for every kind of plugin: architectures, loss terms, dataset readers,
post-processing, optimisers and learning-rate schedules.

An entry names its builder as ``"package.module:callable"`` (a reader: ``"package.module"``) and is imported
only when it is built. It declares the options params may set, with their defaults, and a one-line summary:
listing entries and checking a params file must not import them (torch takes seconds to import, MONAI ten).
The unit tests compare every declaration with its builder's signature (``inspect``), so the two cannot drift.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segbench import SegbenchError, did_you_mean, look_up


@dataclass(frozen=True)
class Check:
    """A rule on an entry's options: ``test(options)`` must hold, else ``option`` gets ``message``."""

    option: str
    test: Callable[[dict], bool]
    message: str


def at_least(option: str, low: float) -> Check:
    return Check(option, lambda o: o[option] >= low, f"must be at least {low}")


def within(option: str, low: float, high: float) -> Check:
    return Check(option, lambda o: low <= o[option] <= high, f"must be in [{low}, {high}]")


def one_of(option: str, *allowed) -> Check:
    return Check(option, lambda o: o[option] in allowed, f"must be one of {list(allowed)}")


@dataclass(frozen=True)
class Entry:
    """A registered builder: ``target`` is ``"module:callable"`` (or a module); ``options`` the keyword options
    params may set, with their defaults; ``bind`` fixes arguments of the builder for this entry."""

    name: str
    target: str
    source: str  # the paper or library it comes from
    summary: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    family: str = ""
    checks: tuple[Check, ...] = ()
    bind: dict = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # modules it imports that a broken install may lack (checked with the params)

    def check(self, options: dict, where: str) -> None:
        """Raise a SegbenchError naming ``where.<option>``, its value and what is allowed."""
        known = self.options
        for key, value in options.items():
            if key not in known:
                raise SegbenchError(f"{where}.{key}: {self.name} takes no option {key!r}; it takes "
                                    f"{sorted(known)}{did_you_mean(key, known)}")
            default = known[key]
            if isinstance(default, bool) and not isinstance(value, bool) or \
                    type(default) in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise SegbenchError(f"{where}.{key}: {value!r} is not a {type(default).__name__} "
                                    f"(the default is {default!r})")
        merged = {**known, **options}
        for rule in self.checks:
            try:
                ok = rule.test(merged)
            except TypeError:
                ok = False
            if not ok:
                raise SegbenchError(f"{where}.{rule.option}: {merged[rule.option]!r} {rule.message}")

    def fingerprint(self) -> str:
        """The entry's definition as text (its checks by option and message): what a job built from it
        depends on besides its module's code."""
        checks = [(c.option, c.message) for c in self.checks]
        return json.dumps([self.name, self.target, self.bind, self.options, checks], sort_keys=True, default=str)

    def load(self) -> Any:
        module, _, attribute = self.target.partition(":")
        loaded = importlib.import_module(module)
        return getattr(loaded, attribute) if attribute else loaded

    def build(self, *args, **options):
        """Import the builder and call it with ``args``, the bound arguments, the declared defaults and
        ``options``."""
        return self.load()(*args, **self.bind, **{**self.options, **options})


def protocol_members(protocol: type) -> list[str]:
    """The attributes and public methods a ``typing.Protocol`` declares (``typing.get_protocol_members`` is
    Python 3.13's)."""
    return sorted({*getattr(protocol, "__annotations__", {}),
                   *(k for k, v in vars(protocol).items() if callable(v) and not k.startswith("_"))})


class Registry:
    """Entries of one kind (``what``: "architecture", "loss term", ...), looked up by name. ``protocol``: a
    ``typing.Protocol`` every entry's loaded target must follow, checked as it is added."""

    def __init__(self, what: str, reserved: tuple[str, ...] = (), protocol: type | None = None):
        self.what, self.reserved, self.protocol = what, reserved, protocol
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str, source: str, summary: str = "", **kw) -> None:
        """Raises: SegbenchError when the target does not follow the registry's protocol, naming what it lacks."""
        if name in self._entries:
            warnings.warn(f"{self.what} {name!r} registered twice; the later one wins", stacklevel=2)
        entry = Entry(name, target, source, summary, **kw)
        if self.protocol is not None:
            loaded = entry.load()
            missing = [m for m in protocol_members(self.protocol) if not hasattr(loaded, m)]
            if missing:
                raise SegbenchError(f"{self.what} {name!r}: {target} lacks {missing}, which a "
                                    f"{self.protocol.__name__} needs")
        self._entries[name] = entry

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self):
        """The names in the order they were added."""
        return iter(self._entries)

    def names(self, family: str | None = None) -> list[str]:
        return sorted(n for n, e in self._entries.items() if family is None or e.family == family)

    def entry(self, name: str) -> Entry:
        """Raises: SegbenchError naming the known entries, with a "did you mean"."""
        return look_up(name, self._entries, self.what)
