from stack import Stack

def test_pop():
    s = Stack()
    s.push(1)
    s.push(2)
    assert s.pop() == 2 and s.pop() == 1 and s.items == []
