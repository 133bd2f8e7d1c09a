"""Expected results of full-text conditions (text, text_any, phrase), computed with
qdrant-client's local mode.

Prints the Rust table `src/filter/crosscheck_text.rs` on stdout; regenerate it with
`python tests/crosscheck/text.py > src/filter/crosscheck_text.rs` (needs `qdrant-client`).
"""

from table import local_mode_cases, print_table

TEXTS = [
    "The quick brown fox jumps over the lazy dog",
    "quick-brown FOX",
    "brown quick fox",
    "snake_case words_here",
    "Straße in München, 2024!",
    "ÉCOLE normale",
    "",
    "   ",
    "fox",
    "foxes and dogs",
    "the the the",
    "C++ and C# are languages",
    "e-mail: someone@example.com",
]

POINTS = [(i + 1, {"t": text}) for i, text in enumerate(TEXTS)] + [
    (30, {"t": ["lazy cat", "quick fox"]}),
    (31, {"t": 42}),
    (32, {"t": None}),
    (33, {}),
    (34, {"doc": {"title": "Brown Fox Returns"}}),
]

CONDITIONS = [
    {"key": "t", "match": {"text": "fox"}},
    {"key": "t", "match": {"text": "Quick FOX"}},
    {"key": "t", "match": {"text": "fox quick"}},
    {"key": "t", "match": {"text": "fo"}},
    {"key": "t", "match": {"text": ""}},
    {"key": "t", "match": {"text": "case"}},
    {"key": "t", "match": {"text": "snake_case"}},
    {"key": "t", "match": {"text": "münchen straße"}},
    {"key": "t", "match": {"text": "école"}},
    {"key": "t", "match": {"text": "c"}},
    {"key": "t", "match": {"text": "example.com"}},
    {"key": "t", "match": {"text": "42"}},
    {"key": "t", "match": {"text_any": "cat dog"}},
    {"key": "t", "match": {"text_any": "zebra"}},
    {"key": "t", "match": {"text_any": ""}},
    {"key": "t", "match": {"phrase": "quick brown"}},
    {"key": "t", "match": {"phrase": "brown quick"}},
    {"key": "t", "match": {"phrase": "the lazy dog"}},
    {"key": "t", "match": {"phrase": "the the"}},
    {"key": "t", "match": {"phrase": "lazy fox"}},
    {"key": "t", "match": {"phrase": ""}},
    {"key": "doc.title", "match": {"phrase": "brown fox"}},
]


def expected() -> list[tuple[str, str]]:
    """(filter JSON, ids local mode matches, ascending) for every condition."""
    return local_mode_cases(POINTS, CONDITIONS)


if __name__ == "__main__":
    print_table("text.py", POINTS, expected())
