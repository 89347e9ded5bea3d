def total(n: int) -> int:
    """Sum of the integers 1..n inclusive."""
    return sum(range(1, n))
