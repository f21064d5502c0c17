"""The README is a front door and docs/ holds the rest: every relative link in README.md and
docs/*.md must lead to a file that exists (and to a heading there, when it names one), and
the README stays short enough to read top to bottom."""

import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_MAX_LINES = 260

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def pages():
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def prose(text):
    """The text without fenced code blocks and inline code, where a link is not a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading):
    # GitHub's anchors: lower case, markup and punctuation dropped, spaces to hyphens.
    s = re.sub(r"`|\*\*|\*", "", heading).strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(text):
    seen = {}
    out = set()
    for line in re.sub(r"^```.*?^```", "", text, flags=re.S | re.M).splitlines():
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else "%s-%d" % (base, n))
    return out


def broken_links(path, text):
    """Every relative link of the page at path whose file or heading does not exist."""
    bad = []
    for target in LINK.findall(prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(dest):
            bad.append("%s: no file %s" % (target, dest))
            continue
        if anchor and dest.endswith(".md"):
            if dest == path:
                there = text
            else:
                with open(dest, encoding="utf-8") as f:
                    there = f.read()
            if anchor not in anchors(there):
                bad.append("%s: no heading #%s in %s" % (target, anchor, os.path.relpath(dest, ROOT)))
    return bad


@pytest.mark.parametrize("page", pages(), ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_resolves(page):
    with open(page, encoding="utf-8") as f:
        text = f.read()
    assert LINK.search(prose(text)), "a page of the docs links nowhere"
    assert broken_links(page, text) == []


def test_the_checker_finds_a_broken_file_a_broken_heading_and_ignores_code():
    page = os.path.join(ROOT, "README.md")
    text = (
        "# Top\n\n## The owner's console: /settings\n\n"
        "[ok](docs/contract.md) ![pic](docs/page-energy.png) [here](#the-owners-console-settings)\n"
        "[web](https://example.com/x) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n"
        "[gone](docs/nowhere.md) [no heading](docs/contract.md#no-such-heading) [self](#nope)\n"
    )
    assert broken_links(page, text) == [
        "docs/nowhere.md: no file %s" % os.path.join(ROOT, "docs", "nowhere.md"),
        "docs/contract.md#no-such-heading: no heading #no-such-heading in docs/contract.md",
        "#nope: no heading #nope in README.md",
    ]


def test_the_readme_is_short_and_links_every_page_of_the_docs():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = {os.path.normpath(t.partition("#")[0]) for t in LINK.findall(prose(text))}
    for page in pages()[1:]:
        assert os.path.relpath(page, ROOT) in linked, "README.md does not link %s" % page
    # the two commands everything hangs on
    assert "make sim" in text and "make test" in text
