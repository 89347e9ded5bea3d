def unique(xs: list[str]) -> list[str]:
    """The distinct items of xs, in first-seen order."""
    return list(set(xs))
