from uniq import unique

def test_order():
    words = [f"w{i}" for i in range(30)]
    assert unique(words + words[::-1]) == words
