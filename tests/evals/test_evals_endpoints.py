"""`--endpoint` parsing: fields, prices, errors that say what is wrong."""

from __future__ import annotations

import pytest

from openk2.evals.endpoints import parse_endpoint


def test_parse_all_fields() -> None:
    ep = parse_endpoint("k2=http://h:1/v1/,model=kimi,key=MY_KEY,price_in=0.95,price_out=4,"
                        "price_cached=0.16,concurrency=8")
    assert (ep.name, ep.url, ep.model, ep.key) == ("k2", "http://h:1/v1", "kimi", "MY_KEY")
    assert (ep.price_in, ep.price_out, ep.price_cached, ep.concurrency) == (0.95, 4.0, 0.16, 8)


def test_cost_uses_cached_price_for_cached_tokens() -> None:
    ep = parse_endpoint("a=http://x/v1,price_in=1,price_out=4,price_cached=0.1")
    assert ep.cost(1_000_000, 500_000, cached_tokens=400_000) == pytest.approx(
        0.6 + 0.04 + 2.0)


@pytest.mark.parametrize("text, message", [
    ("no-equals", "NAME=URL"),
    ("a=ftp://x", "http://"),
    ("a=http://x,price_in=cheap", "bad price_in"),
    ("a=http://x,price_out=-1", "negative"),
    ("a=http://x,concurrency=0", "at least 1"),
    ("a=http://x,colour=red", "unknown field 'colour'"),
    ("a=http://x,model", "field=value"),
])
def test_bad_endpoints_are_explained(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_endpoint(text)


def test_unset_key_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENK2_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENK2_TEST_NO_SUCH_KEY"):
        parse_endpoint("a=http://x,key=OPENK2_TEST_NO_SUCH_KEY").api_key()
