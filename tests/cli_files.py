"""Helpers shared by the command-line tests: JSONL files from tuples, and the one-line error a bad input gets."""
import json


def write_jsonl(path, rows, keys):
    """One JSON record per tuple of `rows`, its fields named by `keys`; returns `path`."""
    path.write_text("".join(json.dumps(dict(zip(keys, row)), ensure_ascii=False) + "\n" for row in rows))
    return path


def error_line(code, capsys):
    """The single 'error:' line of a run refused with exit code 2 (asserts there is exactly one)."""
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    return lines[0]
