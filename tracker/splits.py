"""The whole-sequence splits of tracker/splits.json: which sequences of which dataset folder train, which validate.

One module because the benchmark (which sequences a split runs, which block a result belongs to) and
training (which sequences it must never see) read the same file: a split changed there changes both.

Layout: ``folders`` maps a dataset folder's name (``sequences`` for ../shared/data/sequences) to its
splits and their sequence names; ``groups`` maps ``training`` and ``validation`` to split names. Every
split is in exactly one group; a group is itself a split name spanning the folders of its splits.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DatasetError

SPLITS_FILE = Path(__file__).with_name("splits.json")
TRAINING, VALIDATION = "training", "validation"


@dataclass(frozen=True)
class Block:
    """One split of one dataset folder: the sequence ``names`` of the folder called ``folder``."""

    split: str
    folder: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Splits:
    """The parsed split file; ``blocks`` by split name, ``groups`` (training, validation) as split names."""

    blocks: dict[str, Block]
    groups: dict[str, tuple[str, ...]]

    @classmethod
    def parse(cls, doc: dict[str, Any], source: str = "tracker/splits.json") -> "Splits":
        """Check the file's promises (one split per name, one group per split) so no caller has to."""
        blocks = {split: Block(split, folder, tuple(names))
                  for folder, splits in doc["folders"].items() for split, names in splits.items()}
        groups = {g: tuple(doc["groups"].get(g, ())) for g in (TRAINING, VALIDATION)}
        seen: dict[str, str] = {}
        for block in blocks.values():
            for name in block.names:
                if name in seen:
                    raise DatasetError(f"{source}: sequence {name} is in both {seen[name]} and {block.split}")
                seen[name] = block.split
        grouped = [s for members in groups.values() for s in members]
        if sorted(grouped) != sorted(blocks) or set(groups) & set(blocks):
            raise DatasetError(f"{source}: every split must be in exactly one of the groups {TRAINING}, {VALIDATION}")
        return cls(blocks, groups)

    @property
    def names(self) -> list[str]:
        """Every split name callers may give: the splits, then the groups."""
        return [*self.blocks, *self.groups]

    def resolve(self, split: str) -> list[Block]:
        """The blocks a split name stands for (one, or a group's, in file order)."""
        if split in self.blocks:
            return [self.blocks[split]]
        if split in self.groups:
            return [self.blocks[s] for s in self.groups[split]]
        raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(self.names)} (tracker/splits.json)")

    def is_validation(self, split: str) -> bool:
        """Whether ``split`` holds any validation sequence (such a split is never trained on)."""
        return any(b.split in self.groups[VALIDATION] for b in self.resolve(split))

    @property
    def validation_names(self) -> frozenset[str]:
        return frozenset(n for b in self.resolve(VALIDATION) for n in b.names)

    def split_of(self, sequence: str) -> str | None:
        """The split a sequence name belongs to (None when the file does not list it)."""
        return next((b.split for b in self.blocks.values() if sequence in b.names), None)

    def describe(self) -> str:
        """'train, val (sequences); train2, val2 (more_sequences); training = train+train2; ...' for help texts."""
        folders: dict[str, list[str]] = {}
        for block in self.blocks.values():
            folders.setdefault(block.folder, []).append(block.split)
        parts = [f"{', '.join(splits)} ({folder})" for folder, splits in folders.items()]
        parts += [f"{group} = {'+'.join(members)}" for group, members in self.groups.items()]
        return "; ".join(parts)


def load_splits(path: Path = SPLITS_FILE) -> Splits:
    """Read and check tracker/splits.json (or another file of its layout)."""
    try:
        return Splits.parse(json.loads(Path(path).read_text()), str(path))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DatasetError(f"{path} is not a split file ({type(exc).__name__}: {exc}); "
                           "expected folders.FOLDER.SPLIT name lists and groups") from None
