def ranked(scores: list[int]) -> list[int]:
    """Scores from highest to lowest."""
    return scores.sort(reverse=True)
