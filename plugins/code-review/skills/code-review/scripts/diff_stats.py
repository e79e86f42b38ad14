"""Tool of the code-review skill: size statistics of a unified diff."""


def diff_stats(diff: str) -> dict:
    """Count the files, added and removed lines of a unified diff."""
    files, added, removed = [], 0, 0
    for line in (diff or "").splitlines():
        if line.startswith("+++ "):
            name = line[4:].strip()
            files.append(name[2:] if name.startswith("b/") else name)
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return {"files": files, "added": added, "removed": removed}
