from rank import ranked

def test_ranked():
    s = [2, 9, 4]
    assert ranked(s) == [9, 4, 2]
    assert s == [2, 9, 4]
