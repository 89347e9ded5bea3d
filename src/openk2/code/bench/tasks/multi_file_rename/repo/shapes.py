import math


def area_of_circle(r: float) -> float:
    return math.pi * r * r
