"""Reading a checkpoint, mapping its keys onto a built module, and saying exactly what does not fit.

:func:`read` loads a file with ``torch.load(..., weights_only=True)`` (no pickled code runs) and
unwraps it (:func:`unwrap`); :func:`map_keys` maps its keys with a registered key mapping
(:mod:`archgraph.weights`), checks them against the module the graph builds (every key mapped,
none missing, none extra, every shape equal), and :func:`load` loads them into that module with
``strict=True``. Problems raise :class:`~archgraph.errors.SpecError` (``SpecErrors`` for
several), located at the checkpoint's file name, a few of each kind with a did-you-mean where a
close name exists.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from archgraph.errors import Loc, SpecError, SpecErrors, did_you_mean, shorten

if TYPE_CHECKING:
    import torch

    from archgraph.ir import ArchGraph
    from archgraph.spec.expand import PlainSpec

# keys that training scripts nest the weights in ("segmenter": DrSleep's light-weight-refinenet)
WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "segmenter")
PREFIXES = ("module.", "model.")  # DataParallel's; HRNet-Semantic-Segmentation's FullModel's
SHOWN = 5  # problems of each kind listed before '... and N more'


def read(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint file (``torch.load(..., weights_only=True)``, then :func:`unwrap`)."""
    import torch

    where = Loc(str(path))
    if os.path.isdir(path):
        raise SpecError("is a directory, not a checkpoint file", where)
    safe = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    try:
        with safe(_numpy_scalars()) if safe else contextlib.nullcontext():
            data = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as error:  # noqa: BLE001 - the unpickler meets arbitrary bytes: any error means "not one"
        raise SpecError(f"not a checkpoint torch can read ({_reason(error)})", where,
                        "give a file written by torch.save: a state dict, or a dict holding one under 'state_dict'; "
                        "it is read with weights_only=True, so a pickled module or code is refused") from None
    return unwrap(data, where)


def _numpy_scalars() -> list:
    """What ``weights_only`` unpickling needs to rebuild numpy scalars of numeric dtypes, and no more.

    Training scripts save a metric beside the weights as a numpy scalar (SFSegNets' ``mean_iu``,
    light-weight-refinenet's ``best_val``). Rebuilding one calls numpy's scalar reconstructor on a
    dtype and raw bytes: no code of the file's choosing runs. The reconstructor is allowed under
    numpy 1's module name too, which checkpoints pickled before numpy 2 name. Arrays stay refused.
    """
    try:
        import numpy as np
    except ImportError:  # torch runs without numpy: no checkpoint could hold numpy scalars then
        return []
    scalar = (np._core if hasattr(np, "_core") else np.core).multiarray.scalar
    kinds = {type(np.dtype(code)) for code in "?bhilqpBHILQPefdgFDG"}  # bool, ints, floats, complex
    return [np.dtype, *kinds, (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar")]


def _reason(error: Exception) -> str:
    """The line of a torch.load error that says what was wrong (not its advice on weights_only)."""
    text = str(error).strip()
    marker = "WeightsUnpickler error:"
    line = text.split(marker, 1)[1].strip() if marker in text else text
    line = line.splitlines()[0] if line else ""
    return f"{type(error).__name__}: {shorten(line, 120)}" if line else type(error).__name__


def unwrap(data: Any, where: Loc = Loc("<checkpoint>")) -> dict[str, torch.Tensor]:
    """The state dict inside ``data``: nested under one of :data:`WRAPPERS` (``{"state_dict": ...}``,
    with an epoch or optimizer beside it) as often as needed, then without a :data:`PREFIXES` prefix
    that every key has (``module.`` from ``nn.DataParallel``)."""
    import torch

    def is_state_dict(d: Any) -> bool:
        return isinstance(d, Mapping) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())

    for _ in range(8):
        if is_state_dict(data) or not isinstance(data, Mapping):
            break
        inner = next((data[k] for k in WRAPPERS if isinstance(data.get(k), Mapping)), None)
        if inner is None:
            break
        data = inner
    if not isinstance(data, Mapping):
        raise SpecError(f"the checkpoint holds a value of type {type(data).__name__}, not a state dict", where,
                        "save model.state_dict(), a dict from names to tensors")
    if not is_state_dict(data):
        bad = next(((k, v) for k, v in data.items() if not isinstance(v, torch.Tensor)), None)
        if bad is None:
            raise SpecError("the checkpoint's state dict is empty", where)
        raise SpecError(f"the checkpoint is not a state dict: {shorten(repr(bad[0]))} holds a value of type "
                        f"{type(bad[1]).__name__}, not a tensor", where,
                        f"a wrapping dict's weights are read from one of: {', '.join(WRAPPERS)}")
    state = {str(k): v for k, v in data.items()}
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _params_text(graph: ArchGraph) -> str:
    return " ".join(f"{k}={v}" for k, v in graph.params.items())


def _dims(shape) -> str:
    return "x".join(str(int(d)) for d in shape) if len(shape) else "a scalar"


def _capped(items: list, error: Any, what: str, where: Loc) -> list[SpecError]:
    """``error(item)`` for the first :data:`SHOWN` items, then one line counting the rest."""
    shown = [error(item) for item in items[:SHOWN]]
    if len(items) > SHOWN:
        shown.append(SpecError(f"... and {len(items) - SHOWN} more {what}", where))
    return shown


def map_keys(state: Mapping[str, torch.Tensor], graph: ArchGraph, mapping: str,
             expected: Mapping[str, tuple[int, ...]], where: Loc = Loc("<checkpoint>")) -> dict[str, torch.Tensor]:
    """``state``'s tensors under the module's keys, by the key mapping ``mapping`` (and its value
    conversion, if it registered one); checked against ``expected`` (the module's keys and shapes). A
    BatchNorm's ``num_batches_tracked``, which old checkpoints lack, is 0 when missing."""
    import torch

    from archgraph.weights import key_maps, value_map

    rule, convert = key_maps()[mapping], value_map(mapping)
    mapped: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unmapped, duplicate = [], []
    for key, tensor in state.items():
        target = rule(key, graph)
        if target is None:
            unmapped.append(key)
        elif target in mapped:
            duplicate.append(SpecError(f"checkpoint keys '{origin[target]}' and '{key}' both map to "
                                       f"{graph.name}'s '{target}'", where))
        else:
            mapped[target], origin[target] = tensor if convert is None else convert(key, tensor), key
    for name in expected:
        if name not in mapped and name.endswith("num_batches_tracked"):
            mapped[name], origin[name] = torch.zeros((), dtype=torch.long), "(0: not in the checkpoint)"
    extra = [t for t in mapped if t not in expected]
    missing = [k for k in expected if k not in mapped]
    # did-you-mean, both ways: a missing key of the module against the checkpoint's keys that map to no
    # key of the module (compared by what they map to), and such an extra key against the missing ones
    loose = {t: origin[t] for t in extra}

    def spare(target: str) -> str | None:
        close = _closest(target, loose)
        return None if close is None else f"did you mean checkpoint key '{shorten(loose[close], 100)}'?"

    wrong = [t for t in mapped if t in expected and tuple(mapped[t].shape) != tuple(expected[t])]
    errors: list[SpecError] = []
    errors += _capped(unmapped, lambda k: SpecError(f"checkpoint key '{shorten(k, 100)}' has no rule in {mapping}",
                                                    where), f"checkpoint keys without a rule in {mapping}", where)
    errors += _capped(extra, lambda t: SpecError(
        f"checkpoint key '{shorten(origin[t], 100)}' maps to '{shorten(t, 100)}', which {graph.name} does not have",
        where, did_you_mean(t, missing)), f"checkpoint keys that {graph.name} does not have", where)
    errors += _capped(missing, lambda k: SpecError(f"{graph.name}'s '{k}' has no key in the checkpoint", where,
                                                   spare(k)), f"keys of {graph.name} missing from the checkpoint",
                      where)
    errors += _capped(wrong, lambda t: SpecError(
        f"checkpoint key '{shorten(origin[t], 100)}' has shape {_dims(mapped[t].shape)}, but {graph.name}'s '{t}' has "
        f"shape {_dims(expected[t])}", where), "shape mismatches", where)
    errors += duplicate
    if errors:
        counts = [f"{n} {what}" for n, what in ((len(unmapped), "without a rule"), (len(extra), "extra"),
                                                 (len(missing), "missing"), (len(wrong), "of another shape"),
                                                 (len(duplicate), "mapped twice")) if n]
        errors.append(SpecError(f"the checkpoint does not fit {graph.name} ({_params_text(graph)}) under {mapping}: "
                                f"{', '.join(counts)}", where,
                                f"most of its keys have no rule in {mapping}: a checkpoint of another network, or of "
                                "another format (--from)?" if len(unmapped) > len(state) // 2 else
                                "check the --set parameters against the checkpoint's variant"
                                if wrong or missing or extra else None))
        raise SpecErrors(errors)
    return {k: mapped[k] for k in expected}


def _closest(word: str, names) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return close[0] if close else None


def load(graph: ArchGraph, state: Mapping[str, torch.Tensor], mapping: str,
         where: Loc = Loc("<checkpoint>")) -> Any:
    """``graph``'s module (on the CPU) with ``state`` mapped onto it by ``mapping`` and loaded with
    ``strict=True``; its ``state_dict()`` is what ``archgraph.build(...).load_state_dict`` accepts."""
    import torch

    from archgraph.backends.torch import GraphModule

    with torch.device("meta"):  # the keys and shapes, checked before anything is allocated
        module = GraphModule(graph)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    mapped = map_keys(state, graph, mapping, expected, where)
    module = module.to_empty(device="cpu")
    module.load_state_dict(mapped, strict=True)
    return module


def to_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """``state`` as ``torch.save`` writes it."""
    import torch

    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return buffer.getvalue()


def choose(plain: PlainSpec, fmt: str | None, where: Loc = Loc("<command line>")) -> tuple[str, str]:
    """(format, key mapping) for ``--from fmt`` (default: the first format the spec's ``weights:`` lists)."""
    from archgraph.weights import key_maps

    source = plain.input_origin.source if plain.input_origin is not None else None
    spec_loc = source.loc(("weights",)) if source is not None else Loc("<spec>")
    if not plain.weights:
        raise SpecError(f"{plain.name} names no checkpoint formats to import weights from", spec_loc,
                        "add a 'weights:' section to the spec's header, e.g. weights: {official: hrnet_official}")
    if fmt is None:
        fmt = next(iter(plain.weights))
    if fmt not in plain.weights:
        hint = did_you_mean(fmt, plain.weights) or f"the spec's formats: {', '.join(plain.weights)}"
        raise SpecError(f"--from {fmt!r} is not a checkpoint format of {plain.name}", where, hint)
    mapping = plain.weights[fmt]
    maps = key_maps()
    if mapping not in maps:
        at = source.loc(("weights", fmt)) if source is not None else spec_loc
        raise SpecError(f"unknown key mapping {mapping!r} for format {fmt!r}", at,
                        did_you_mean(mapping, maps) or f"registered: {', '.join(sorted(maps))}")
    return fmt, mapping
