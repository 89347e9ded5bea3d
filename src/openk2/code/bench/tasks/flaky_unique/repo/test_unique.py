from uniq import unique

def test_order():
    assert unique(["b", "a", "b", "c"]) == ["b", "a", "c"]
