"""Training subsets: nested (a smaller one inside a larger one), class-stratified, deterministic given the seed."""

from __future__ import annotations

from collections import Counter

import pytest

from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.study.subsets import per_class_count, training_subset


def _index(per_class=(20, 12, 7)) -> VideoIndex:
    records = [VideoRecord(f"c{label}_{i}", f"/v/c{label}_{i}.mp4", label, "training")
               for label, n in enumerate(per_class) for i in range(n)]
    records += [VideoRecord(f"val{label}", f"/v/val{label}.mp4", label, "validation") for label in range(3)]
    return VideoIndex(["a", "b", "c"], records)


def _training_ids(index: VideoIndex) -> set[str]:
    return {r.video_id for r in index.subset("training")}


@pytest.mark.parametrize("sizes", [(0.25, 0.5, 1.0), (2, 5, 10)])
def test_smaller_subsets_are_inside_larger_ones_and_keep_the_class_balance(sizes):
    index = _index()
    subsets = [training_subset(index, s, seed=0) for s in sizes]
    for small, large in zip(subsets, subsets[1:]):
        assert _training_ids(small) < _training_ids(large)
    for size, subset in zip(sizes, subsets):
        counts = Counter(r.label for r in subset.subset("training"))
        assert [counts[k] for k in range(3)] == [per_class_count(n, size) for n in (20, 12, 7)]
        assert [r.video_id for r in subset.subset("validation")] == ["val0", "val1", "val2"]  # kept whole


def test_class_counts_by_fraction_and_by_videos_per_class():
    assert [per_class_count(n, 0.25) for n in (20, 12, 7, 1)] == [5, 3, 2, 1]  # rounded, never empty
    assert [per_class_count(n, 10) for n in (20, 12, 7)] == [10, 10, 7]  # capped at what the class has
    assert [per_class_count(n, 1.0) for n in (20, 12, 7)] == [20, 12, 7]


def test_subsets_are_deterministic_given_the_seed():
    index = _index()
    assert _training_ids(training_subset(index, 0.5, seed=1)) == _training_ids(training_subset(index, 0.5, seed=1))
    assert _training_ids(training_subset(index, 0.5, seed=1)) != _training_ids(training_subset(index, 0.5, seed=2))
    shuffled = VideoIndex(index.classes, list(reversed(index.records)))  # the file's order does not matter
    assert _training_ids(training_subset(shuffled, 0.5, seed=1)) == _training_ids(training_subset(index, 0.5, seed=1))


def test_the_study_writes_its_subsets_as_index_files(tiny_done):
    out, _, _ = tiny_done
    full = VideoIndex.load(out / "subsets" / "small" / "100pct.json")
    two = VideoIndex.load(out / "subsets" / "small" / "2vpc.json")
    assert _training_ids(two) < _training_ids(full)
    assert Counter(r.label for r in two.subset("training")) == {0: 2, 1: 2}
    assert Counter(r.label for r in full.subset("training")) == {0: 4, 1: 4}
    assert two.subset("validation").records == full.subset("validation").records
    assert all(r.path.startswith(str(out / "data" / "small")) for r in full.records)
