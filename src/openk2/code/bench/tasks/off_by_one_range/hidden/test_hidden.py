from series import total

def test_total():
    assert total(1) == 1
    assert total(4) == 10
    assert total(0) == 0
