def full_name(first: str, last: str | None) -> str:
    return first + " " + last
