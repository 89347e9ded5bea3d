from config import VALUES


def load_timeout(values: dict[str, str] = VALUES) -> int:
    return values.get("timeout")
