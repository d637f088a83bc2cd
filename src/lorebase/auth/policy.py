"""The password policy, after NIST SP 800-63B: a minimum length, no composition rules, and a
refusal of passwords that are known to be common or are one character repeated."""

from __future__ import annotations

MIN_PASSWORD_LENGTH = 10
MIN_DISTINCT_CHARACTERS = 4

# The most frequent passwords of 10+ characters in public breach lists (lowercased).
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "0123456789",
        "0987654321",
        "12345678910",
        "123456789a",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abcdefghij",
        "abcd123456",
        "qwertyuiop",
        "asdfghjkl1",
        "password12",
        "password123",
        "password1234",
        "password!1",
        "passw0rd123",
        "iloveyou12",
        "iloveyou123",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "letmein123",
        "welcome123",
        "welcome1234",
        "administrator",
        "admin12345",
        "changeme123",
        "football123",
        "baseball123",
        "sunshine123",
        "princess123",
        "monkey12345",
        "dragon12345",
        "starwars123",
        "trustno1234",
        "superman123",
        "michael123",
        "lorebase123",
        "lorebase1234",
    }
)


def password_problem(password: str) -> str | None:
    """Why `password` is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return "the password repeats too few characters"
    if password.strip().lower() in COMMON_PASSWORDS:
        return "the password is too common; choose a longer phrase"
    return None
