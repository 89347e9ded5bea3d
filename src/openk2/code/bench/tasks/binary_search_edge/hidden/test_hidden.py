from search import find

def test_find():
    xs = [1, 3, 5, 7]
    assert [find(xs, x) for x in xs] == [0, 1, 2, 3]
    assert find(xs, 4) == -1 and find([], 1) == -1
