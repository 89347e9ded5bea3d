from shapes import area_of_circle


def describe(r: float) -> str:
    return f"circle of radius {r}: area {area_of_circle(r):.2f}"
