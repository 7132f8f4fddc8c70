#!/usr/bin/env python3
"""Every Swift test runs under a deadline: each @Suite declares .deadline(...), and every @Test sits in a
suite (or an extension of one). A test without a limit could hang the whole run."""
import pathlib, re, sys

root = pathlib.Path(__file__).resolve().parent.parent
problems, suites, extended = [], set(), []
for path in sorted((root / "Tests").rglob("*.swift")):
    text = path.read_text()
    for match in re.finditer(r"@Suite(\((?P<traits>(?:[^()]|\([^()]*(?:\([^()]*\))?[^()]*\))*)\))?\s*(?:final\s+)?(?:struct|class|enum)\s+(?P<name>\w+)", text, re.S):
        if ".deadline(" in (match.group("traits") or ""):
            suites.add(match.group("name"))
        else:
            problems.append(f"{path.relative_to(root)}: suite {match.group('name')} has no .deadline(...)")
    if re.search(r"^@Test", text, re.M):
        problems.append(f"{path.relative_to(root)}: a @Test outside any suite (put it in a @Suite with a .deadline)")
    if "@Test" in text and "@Suite" not in text:
        extended += [(path, name) for name in re.findall(r"^extension\s+(\w+)", text, re.M)] or [(path, None)]
for path, name in extended:
    if name not in suites:
        problems.append(f"{path.relative_to(root)}: tests in {name or 'no suite'}, which has no .deadline(...)")
for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
