from settings import load_timeout

def test_timeout():
    assert load_timeout() == 45
    assert load_timeout({}) == 30
