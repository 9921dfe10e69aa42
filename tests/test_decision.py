from matcher import select_candidates


def test_one_entry_per_person_at_their_closest_template() -> None:
    neighbours = [("ann", 0.31), ("bob", 0.35), ("ann", 0.29), ("cat", 0.5), ("bob", 0.7)]
    assert select_candidates(neighbours, threshold=0.6, limit=5) == [
        ("ann", 0.29),
        ("bob", 0.35),
        ("cat", 0.5),
    ]


def test_threshold_is_strict_and_the_list_is_capped() -> None:
    neighbours = [("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.6)]
    assert select_candidates(neighbours, threshold=0.6, limit=2) == [("a", 0.1), ("b", 0.2)]
    assert select_candidates(neighbours, threshold=0.1, limit=5) == []
