"""Small helpers for saying an event in words, shared by every app's summaries."""


def get(data, key, default=""):
    """data[key] when data is a dict that holds a value there, else the default."""
    value = data.get(key, default) if isinstance(data, dict) else default
    return default if value is None else value


def shorten(text, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def names(value) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def with_comment(text: str, comment) -> str:
    return f"{text}: “{shorten(comment)}”" if comment else text
