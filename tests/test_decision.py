from matcher import MatchRule, select_candidates


def test_one_entry_per_person_at_their_closest_template() -> None:
    neighbours = [("ann", 0.31), ("bob", 0.35), ("ann", 0.29), ("cat", 0.5), ("bob", 0.7)]
    assert select_candidates(neighbours, MatchRule(threshold=0.6, limit=5)) == [
        ("ann", 0.29),
        ("bob", 0.35),
        ("cat", 0.5),
    ]


def test_threshold_is_strict_and_the_list_is_capped() -> None:
    neighbours = [("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.6)]
    assert select_candidates(neighbours, MatchRule(threshold=0.6, limit=2)) == [
        ("a", 0.1),
        ("b", 0.2),
    ]
    assert select_candidates(neighbours, MatchRule(threshold=0.1, limit=5)) == []


def test_an_ambiguous_search_returns_nobody() -> None:
    """The nearest person within the margin of the next, even one past the threshold: an
    ambiguous search, whose candidates are dropped; a clear one keeps its list."""
    close = [("a", 0.30), ("a", 0.31), ("b", 0.33), ("c", 0.34)]
    assert select_candidates(close, MatchRule(threshold=0.32, limit=5, margin=0.05)) == []
    assert select_candidates(close, MatchRule(threshold=0.32, limit=5, margin=0.02)) == [
        ("a", 0.30)
    ]
    alone = [("a", 0.2), ("a", 0.21)]
    assert select_candidates(alone, MatchRule(threshold=0.3, limit=5, margin=0.5)) == [("a", 0.2)]
