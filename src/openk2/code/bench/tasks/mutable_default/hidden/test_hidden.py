from tags import add_tag

def test_fresh_list():
    assert add_tag("a") == ["a"]
    assert add_tag("b") == ["b"]
    assert add_tag("c", ["x"]) == ["x", "c"]
