def average(xs: list[float]) -> float:
    return sum(xs) // len(xs)
