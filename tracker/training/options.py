"""Command-line options generated from the training dataclasses, so every field is documented once.

A field declared with :func:`opt` carries its help text; :func:`add_arguments` turns each field of
a dataclass into ``--prefix-field-name`` and :func:`from_args` builds the dataclass back.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Type, TypeVar

T = TypeVar("T")


def opt(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _type_of(field: dataclasses.Field) -> Any:
    kind = str(field.type)
    if "bool" in kind:
        return _parse_bool
    if "float" in kind:
        return float
    if "int" in kind:
        return int
    return str


def flag(prefix: str, name: str) -> str:
    """The option spelling of field ``name`` of a dataclass added with ``prefix``."""
    return "--" + (f"{prefix}-" if prefix else "") + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "", title: str | None = None) -> None:
    """One option per field of ``cls`` (help text from :func:`opt`, default shown)."""
    group = parser.add_argument_group(title or cls.__doc__.splitlines()[0] if cls.__doc__ else None)
    for f in dataclasses.fields(cls):
        help_text = f.metadata.get("help", "")
        group.add_argument(flag(prefix, f.name), dest=f"{prefix}__{f.name}", type=_type_of(f),
                           default=None, metavar=f.name.upper(),
                           help=f"{help_text} (default: {f.default})")


def given(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` set on the command line (omitted options are None in ``args``)."""
    return {f.name: getattr(args, f"{prefix}__{f.name}") for f in dataclasses.fields(cls)
            if getattr(args, f"{prefix}__{f.name}", None) is not None}


def from_args(args: argparse.Namespace, cls: Type[T], prefix: str = "") -> T:
    """Build ``cls`` from the options given on the command line; omitted ones keep their defaults."""
    return cls(**given(args, cls, prefix))
