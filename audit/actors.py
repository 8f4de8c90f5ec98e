"""How the record names who acted: `user:<name>`, `service:<name>` or `system`."""


def user_actor(user) -> str:
    """A person, by their username."""
    return named_user(user.get_username())


def named_user(username: str) -> str:
    return f"user:{username}"
