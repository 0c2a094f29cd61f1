"""Official HRNet state-dict keys -> archgraph's, for specs/hrnet.yaml (used to move weights in tests)."""

from __future__ import annotations

import re

_RULES = [
    (r"^conv1\.(.*)", r"nodes.stem.0.0.\1"),
    (r"^bn1\.(.*)", r"nodes.stem.0.1.\1"),
    (r"^conv2\.(.*)", r"nodes.stem.1.0.\1"),
    (r"^bn2\.(.*)", r"nodes.stem.1.1.\1"),
    (r"^layer1\.(.*)", r"nodes.layer1.\1"),
    (r"^stage(\d)\.(\d+)\.branches\.(\d+)\.(.*)", r"nodes.s\1_m\2_b\3.\4"),
    (r"^incre_modules\.(\d+)\.(.*)", r"nodes.classifier_incre\1.\2"),
    (r"^classifier\.(.*)", r"nodes.classifier.2.\1"),
    (r"^last_layer\.0\.(.*)", r"nodes.segmentation.0.0.\1"),
    (r"^last_layer\.1\.(.*)", r"nodes.segmentation.0.1.\1"),
    (r"^last_layer\.3\.(.*)", r"nodes.segmentation.1.0.\1"),
]


def official_to_archgraph(key: str, head: str, modules: dict[int, int]) -> str:
    """Map one official key; ``modules`` gives the number of modules per stage ({2: 1, 3: 4, 4: 3})."""
    m = re.match(r"^transition(\d)\.(\d+)\.(.*)", key)
    if m:
        stage, branch, rest = int(m[1]) + 1, int(m[2]), m[3]
        # stage 2's transitions read layer1; later ones only add a branch, grown from the last one
        src = "layer1" if stage == 2 else f"s{stage - 1}_m{modules[stage - 1] - 1}_f{stage - 2}"
        return f"edges.s{stage}_t{branch}.{src}.{rest}"
    m = re.match(r"^stage(\d)\.(\d+)\.fuse_layers\.(\d+)\.(\d+)\.(.*)", key)
    if m:
        s, mod, i, j, rest = m.groups()
        return f"edges.s{s}_m{mod}_f{i}.s{s}_m{mod}_b{j}.{rest}"
    m = re.match(r"^downsamp_modules\.(\d+)\.(.*)", key)
    if m:
        i, rest = int(m[1]), m[2]
        src = "classifier_incre0" if i == 0 else f"classifier_y{i}"
        return f"edges.classifier_y{i + 1}.{src}.0.{rest}"
    m = re.match(r"^final_layer\.(.*)", key)
    if m:
        return f"nodes.classifier.0.{m[1]}" if head == "classification" else f"nodes.heatmaps.0.0.{m[1]}"
    for pattern, replacement in _RULES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(key)
