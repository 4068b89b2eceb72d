"""``ModulePass``: a pass over a :class:`~spdnn.passes.spdnn.module.MergeModule` (several
parent graphs and their analyses) instead of one graph; the SPDNN stages are such passes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from spdnn.errors import PassError
from spdnn.passes.base import Pass, PassResult
from spdnn.passes.spdnn.module import MergeModule

__all__ = ["ModulePass"]


@dataclass(frozen=True)
class ModulePass(Pass):
    """Base of the SPDNN stage passes: ``run(module)`` on a MergeModule, which it changes in
    place; the :class:`PassResult` carries the module."""

    name: ClassVar[str] = "module-pass"

    def requires(self, module) -> None:
        if not isinstance(module, MergeModule):
            raise PassError(f"pass {self.name!r} is an SPDNN merge stage: it runs on the parents of a merge "
                            "(spdnn.passes.spdnn.MergeModule.of(parents)), not on one graph; "
                            "spdnn merge runs the whole pipeline")

    def ensures(self, module: MergeModule) -> None:
        """Nothing more: spdnn-to-network verifies the network as it builds it, and a pass
        manager with ``verify_each`` calls ``module.verify()`` after every stage anyway."""

    def call(self, module: MergeModule) -> PassResult:
        raise NotImplementedError
