from convert import parse_int

def test_parse():
    assert parse_int("12", 0) == 12
    assert parse_int("abc", 0) == 0
