#!/usr/bin/env python3
"""Import cycles between a crate's modules: reads every `crate::a::b` path in src/ (use lines and
inline paths), maps each file to its module path, and reports every strongly connected group of
modules that import each other. Exit 1 when there is one.

Usage: scripts/check-layers.py CRATE_SRC [--depth N]   (N: module depth compared; default 1,
i.e. top-level modules such as `crate::sync`; 2 compares `crate::store::sqlite` and the like)
"""
import re
import sys
from pathlib import Path

PATH = re.compile(r"\bcrate((?:::[a-z_][a-z0-9_]*)+)")
GROUP = re.compile(r"\bcrate::\{([^}]*)\}")
# `use super::x` seen from a/b.rs is crate::a::x.
SUPER = re.compile(r"\bsuper((?:::[a-z_][a-z0-9_]*)+)")


def module_of(src: Path, file: Path) -> list[str]:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def without_tests(text: str) -> str:
    # Test modules may reach anywhere; the layering is about the code that ships.
    cut = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: cut.start()] if cut else text


def edges(src: Path, depth: int):
    graph: dict[str, set[str]] = {}
    for file in sorted(src.rglob("*.rs")):
        mod = module_of(src, file)
        if not mod:
            continue
        text = open(file, encoding="utf-8").read()
        if re.search(r"^\s*#!\[cfg\(test\)\]", text, re.M):
            continue
        if file.name.endswith("tests.rs") or file.parent.name == "tests":
            continue
        text = without_tests(strip_comments(text))
        me = "::".join(mod[:depth])
        targets = [m.group(1).split("::")[1:] for m in PATH.finditer(text)]
        for g in GROUP.finditer(text):
            for item in g.group(1).split(","):
                item = item.strip().split("::")
                if item and item[0]:
                    targets.append(item)
        # super:: from a file is its parent module (a/b.rs -> a; a/b/mod.rs -> a).
        base = mod[:-1]
        for m in SUPER.finditer(text):
            targets.append(base + m.group(1).split("::")[1:])
        for t in targets:
            t = [p for p in t if p][:depth]
            if not t:
                continue
            other = "::".join(t)
            if other != me and not me.startswith(other + "::") and not other.startswith(me + "::"):
                graph.setdefault(me, set()).add(other)
    return graph


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def self_test():
    """The check itself, on made-up crates: a cycle through a `use` group, an inline path and
    `super::` is found; the same crate without the back edge passes."""
    import tempfile

    def crate(files):
        root = Path(tempfile.mkdtemp())
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        return root

    cyclic = crate({
        "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
        "a/mod.rs": "mod inner;\nuse crate::{b::Thing, c};\n",
        "a/inner.rs": "fn f() { super::super::c::g(); }\n",
        "b.rs": "pub struct Thing;\nfn f() -> crate::c::X { todo!() }\n",
        "c.rs": "// use crate::a; (a comment is no import)\npub fn g() { crate::a::h(); }\n",
    })
    found = cycles(edges(cyclic, 1))
    assert found == [["a", "b", "c"]], found
    acyclic = crate({
        "a.rs": "use crate::b::Thing;\n",
        "b.rs": "pub struct Thing;\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
    })
    assert cycles(edges(acyclic, 1)) == [], "a test module's import is not a layer"
    print("check-layers self-test: ok")


def main():
    args = sys.argv[1:]
    if args == ["--self-test"]:
        self_test()
        return
    depth = 1
    if "--depth" in args:
        i = args.index("--depth")
        depth = int(args[i + 1])
        del args[i : i + 2]
    failed = False
    for src in args:
        graph = edges(Path(src), depth)
        found = cycles(graph)
        for group in found:
            failed = True
            inside = set(group)
            print(f"{src}: import cycle among {len(group)} modules:")
            for m in group:
                print(f"  {m} -> {', '.join(sorted(graph[m] & inside))}")
        if not found:
            print(f"{src}: no import cycle between modules")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
