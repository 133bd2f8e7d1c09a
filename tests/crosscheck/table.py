"""Recomputes the expected ids of `src/filter/crosscheck_table.rs` with qdrant-client's local
mode, from the points and filters already in that file, and prints the file again.

`python tests/crosscheck/table.py > /tmp/t.rs && rustfmt /tmp/t.rs &&
diff /tmp/t.rs src/filter/crosscheck_table.rs` shows whether the installed client still agrees;
add a case by appending `(filter, "[]")` to the file and regenerating. Needs `qdrant-client`.
"""

import json
import pathlib
import re

from qdrant_client import QdrantClient, models

TABLE = pathlib.Path(__file__).resolve().parents[2] / "src" / "filter" / "crosscheck_table.rs"


def committed(path: pathlib.Path) -> tuple[str, list[tuple[str, str]]]:
    """The text of a table file and its (filter, ids) cases."""
    text = path.read_text()
    return text, re.findall(r'\(\s*r#"(.*?)"#,\s*r#"(.*?)"#,?\s*\)', text, re.S)


def recompute() -> list[tuple[str, str]]:
    """(filter, ids as local mode finds them now) for every case of the table."""
    text, cases = committed(TABLE)
    points_json = re.search(r'POINTS: &str = r#"(\[.*?\])"#;', text, re.S).group(1)
    client = QdrantClient(":memory:")
    dense = models.VectorParams(size=2, distance=models.Distance.DOT)
    client.create_collection("t", vectors_config={"main": dense, "extra": dense})
    client.upsert(
        "t",
        [
            models.PointStruct(
                id=p["id"],
                vector={"main": [1.0, 0.0], **({"extra": [0.0, 1.0]} if p["extra"] else {})},
                payload=p["payload"],
            )
            for p in json.loads(points_json)
        ],
    )
    out = []
    for flt, _ in cases:
        found, _ = client.scroll("t", scroll_filter=models.Filter(**json.loads(flt)), limit=1000)
        out.append((flt, json.dumps([p.id for p in found])))
    return out


def print_cases(cases: list[tuple[str, str]]) -> None:
    """Prints the `CASES` constant of a table file."""
    print("pub(super) const CASES: &[(&str, &str)] = &[")
    for flt, ids in cases:
        print(f'    (\n        r#"{flt}"#,\n        r#"{ids}"#,\n    ),')
    print("];")


def main() -> None:
    text, _ = committed(TABLE)
    print(text[: text.index("pub(super) const CASES")], end="")
    print_cases(recompute())


if __name__ == "__main__":
    main()
