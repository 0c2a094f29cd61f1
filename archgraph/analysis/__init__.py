"""Analyses of a verified graph: the static cost model (no torch) and, in ``measure``, torch-based checks.

``archgraph.analysis.cost`` reads the IR and the ops' cost rules only; ``archgraph.analysis.measure``
imports torch (and fvcore) when its functions are called.
"""

from archgraph.analysis.cost import CONVENTIONS, Convention, Cost, Profile, convention, profile

__all__ = ["CONVENTIONS", "Convention", "Cost", "Profile", "convention", "profile"]
