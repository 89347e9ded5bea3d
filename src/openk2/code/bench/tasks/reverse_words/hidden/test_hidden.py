from text import reverse_words

def test_words():
    assert reverse_words("one two three") == "three two one"
