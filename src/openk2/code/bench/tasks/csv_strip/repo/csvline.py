def parse_line(line: str) -> list[str]:
    return line.split(",")
