def parse_int(s: str, default: int) -> int:
    try:
        return int(s)
    except TypeError:
        return default
