"""The forest as flat arrays: the serving path's model call, with no pickle and no thread pool.

scikit-learn spends ~80 ms per row on a 2-core machine starting thread pools for an ``n_jobs=-1``
forest; the forest itself is a few hundred comparisons. Evaluating it as arrays gives the same labels
and probabilities bit for bit, because it repeats scikit-learn's arithmetic: the scaler's float64
subtract-and-divide, the cast to float32 that trees apply to their input, comparison against float64
thresholds, per-leaf normalisation, and summing the trees in order before dividing by their number.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np

ARRAY_NAMES = ("mean", "scale", "feature", "threshold", "left", "right", "leaf_proba", "roots", "depth")
MAX_DEPTH = 64  # the model is fitted with max_depth=10; predict runs ``depth`` steps, so depth is a cost bound
FLOAT_ARRAYS = ("mean", "scale", "threshold", "leaf_proba")
INDEX_ARRAYS = ("feature", "left", "right", "roots")


@dataclass(frozen=True)
class CompiledForest:
    mean: np.ndarray
    scale: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_proba: np.ndarray  # fraud probability of each node (meaningful at leaves)
    roots: np.ndarray
    depth: np.ndarray  # a 0-d array: the deepest tree's depth

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError unless these arrays are a forest ``predict`` can walk safely and exactly.

        A signature proves who shipped the file, not that it is sound: out-of-range children crash every
        request, NaN thresholds send every row one way, a huge ``depth`` makes every call slow. So the
        shape, dtypes, index ranges, leaf markers and finiteness are checked, and every node must be
        reached exactly once from the roots (no cycles, no sharing) within ``depth`` == the real depth.
        """
        _check_arrays(self)
        n_nodes, n_features = len(self.threshold), len(self.mean)
        if not (np.isfinite(self.mean).all() and np.isfinite(self.scale).all() and (self.scale != 0).all()):
            raise ValueError("scaler mean and scale must be finite and scale non-zero")
        if not ((self.feature >= 0) & (self.feature < n_features)).all():
            raise ValueError("feature index out of range")
        for name in ("left", "right", "roots"):
            if not ((getattr(self, name) >= 0) & (getattr(self, name) < n_nodes)).all():
                raise ValueError(f"{name} holds a node index out of range")
        ids = np.arange(n_nodes)
        leaf = (self.left == ids) & (self.right == ids)
        if not np.array_equal(leaf, np.isposinf(self.threshold)) or not np.isfinite(self.threshold[~leaf]).all():
            raise ValueError("leaves must point at themselves with an infinite threshold; splits need finite ones")
        if ((self.left == ids) | (self.right == ids))[~leaf].any():
            raise ValueError("a split points at itself")
        if not (np.isfinite(self.leaf_proba) & (self.leaf_proba >= 0) & (self.leaf_proba <= 1)).all():
            raise ValueError("probabilities must be finite and within [0, 1]")
        depth = _walk_once(self.roots, self.left, self.right, leaf)
        if int(self.depth) != depth:
            raise ValueError(f"depth {int(self.depth)} differs from the trees' real depth {depth}")

    @classmethod
    def from_sklearn(cls, scaler, forest) -> "CompiledForest":
        features, thresholds, lefts, rights, probas, roots = [], [], [], [], [], []
        offset = 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            n = tree.node_count
            ids = np.arange(n)
            leaf = tree.children_left == -1
            value = tree.value[:, 0, :]
            normaliser = value.sum(axis=1)
            normaliser[normaliser == 0.0] = 1.0
            proba = value / normaliser[:, None]
            features.append(np.where(leaf, 0, tree.feature).astype(np.intp))
            thresholds.append(np.where(leaf, np.inf, tree.threshold))
            lefts.append(np.where(leaf, ids, tree.children_left) + offset)
            rights.append(np.where(leaf, ids, tree.children_right) + offset)
            probas.append(proba[:, 1])
            roots.append(offset)
            offset += n
        return cls(
            mean=np.asarray(scaler.mean_, np.float64), scale=np.asarray(scaler.scale_, np.float64),
            feature=np.concatenate(features), threshold=np.concatenate(thresholds),
            left=np.concatenate(lefts).astype(np.intp), right=np.concatenate(rights).astype(np.intp),
            leaf_proba=np.concatenate(probas), roots=np.asarray(roots, np.intp),
            depth=np.asarray(max(e.tree_.max_depth for e in forest.estimators_), np.intp),
        )

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability per row, equal to ``forest.predict_proba(scaler.transform(X))[:, 1]``."""
        X = np.asarray(X, np.float64)
        scaled = ((X - self.mean) / self.scale).astype(np.float32)
        rows = np.arange(len(X))[:, None]
        node = np.broadcast_to(self.roots, (len(X), len(self.roots)))
        for _ in range(int(self.depth)):
            go_left = scaled[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return np.cumsum(self.leaf_proba[node], axis=1)[:, -1] / len(self.roots)

    @cached_property
    def _children(self) -> np.ndarray:
        return np.stack([self.left, self.right], axis=1)

    def predict_one(self, row: np.ndarray) -> tuple[int, float]:
        """One row, the serving path: the same arithmetic as ``predict_proba``, with every node's decision
        for this row taken at once (one comparison over all nodes), so a level of the walk costs two
        indexing operations instead of seven."""
        scaled = ((np.asarray(row, np.float64).reshape(-1) - self.mean) / self.scale).astype(np.float32)
        goes_right = ~(scaled[self.feature] <= self.threshold)
        children, node = self._children, self.roots
        for _ in range(int(self.depth)):
            node = children[node, goes_right[node].view(np.int8)]
        proba = self.leaf_proba[node].cumsum()[-1] / len(self.roots)  # the method: np.cumsum's wrapper costs more
        return int(proba > 0.5), float(proba)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities; a label is fraud only above one half, as scikit-learn's argmax."""
        proba = self.predict_proba(X)
        return (proba > 0.5).astype(np.int64), proba

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(self, name) for name in ARRAY_NAMES})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "CompiledForest":
        """Arrays only: ``allow_pickle=False`` means these bytes can never run code."""
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if set(arrays.files) != set(ARRAY_NAMES):
                raise ValueError(f"expected arrays {sorted(ARRAY_NAMES)}, found {sorted(arrays.files)}")
            return cls(**{name: arrays[name] for name in ARRAY_NAMES})


def _check_arrays(forest: CompiledForest) -> None:
    """Dtypes and shapes first, so the range checks below compare like with like."""
    for name in FLOAT_ARRAYS:
        if getattr(forest, name).dtype != np.float64 or getattr(forest, name).ndim != 1:
            raise ValueError(f"{name} must be a 1-d float64 array")
    for name in (*INDEX_ARRAYS, "depth"):
        if getattr(forest, name).dtype != np.intp or getattr(forest, name).ndim != (0 if name == "depth" else 1):
            raise ValueError(f"{name} must be a {'0' if name == 'depth' else '1'}-d {np.dtype(np.intp)} array")
    n_nodes = len(forest.threshold)
    if len(forest.mean) < 1 or len(forest.scale) != len(forest.mean):
        raise ValueError("mean and scale must have one entry per feature")
    if len(forest.roots) < 1 or any(len(getattr(forest, name)) != n_nodes
                                    for name in ("feature", "left", "right", "leaf_proba")):
        raise ValueError("node arrays must all have one entry per node, and there must be a tree")


def _walk_once(roots: np.ndarray, left: np.ndarray, right: np.ndarray, leaf: np.ndarray) -> int:
    """Breadth-first from the roots; returns the deepest leaf's depth. Refuses a node reached twice or never."""
    seen = np.zeros(len(leaf), np.int64)
    np.add.at(seen, roots, 1)
    frontier, depth = roots, 0
    while True:
        if (seen > 1).any():
            raise ValueError("a node is reached more than once (shared node or cycle)")
        splits = frontier[~leaf[frontier]]
        if len(splits) == 0:
            break
        if depth == MAX_DEPTH:
            raise ValueError(f"trees deeper than {MAX_DEPTH}")
        frontier = np.concatenate([left[splits], right[splits]])
        np.add.at(seen, frontier, 1)
        depth += 1
    if (seen == 0).any():
        raise ValueError("a node is not reachable from any root")
    return depth


def boundary_stress_set(compiled: CompiledForest, base: np.ndarray) -> np.ndarray:
    """Rows that sit on, just above and just below every split threshold of the forest.

    Float rounding disagreements between two implementations show up here first.
    """
    rows = []
    internal = np.isfinite(compiled.threshold)
    for feature, threshold in zip(compiled.feature[internal], compiled.threshold[internal]):
        raw = threshold * compiled.scale[feature] + compiled.mean[feature]
        for value in (np.nextafter(raw, -np.inf), raw, np.nextafter(raw, np.inf)):
            row = base.copy()
            row[feature] = value
            rows.append(row)
    return np.unique(np.asarray(rows), axis=0)
