import shapes
from report import describe

def test_renamed():
    assert not hasattr(shapes, "area_of_circle")
    assert round(shapes.circle_area(1.0), 5) == 3.14159
    assert describe(1.0) == "circle of radius 1.0: area 3.14"
