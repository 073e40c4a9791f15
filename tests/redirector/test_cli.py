import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "backend", *args], capture_output=True, text=True, timeout=60)


def test_resolve_prints_target():
    done = run("resolve", "see arXiv:2307.01850v2")
    assert done.returncode == 0
    assert done.stdout.strip() == "https://papers.cool/arxiv/2307.01850"


def test_resolve_with_base_and_context():
    done = run("resolve", "--context", "link", "--base", "http://127.0.0.1:5000", "https://openreview.net/forum?id=B18WgG-CZ")
    assert done.stdout.strip() == "http://127.0.0.1:5000/venue/B18WgG-CZ@OpenReview"


def test_nothing_found_exits_1_with_one_line():
    done = run("resolve", "--context", "link", "https://example.com/about")
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_usage_exits_2():
    done = run("resolve", "--context", "tab", "x")
    assert done.returncode == 2
