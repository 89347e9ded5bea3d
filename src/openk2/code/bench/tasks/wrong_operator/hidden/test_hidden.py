from parity import is_even

def test_is_even():
    assert is_even(4) and is_even(0) and not is_even(7)
