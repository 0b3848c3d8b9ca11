#!/usr/bin/env python3
"""No Swift compiler here, so CI checks what it can of the Swift API: the Swift sources, headers and
modulemap generated from the library are all there and complete.

The reference is the library itself, read independently of the Swift generator: its exported
`uniffi_*` C functions and its `UNIFFI_META_*` metadata symbols (one per record, enum, error,
object, callback interface, method, constructor and function). Every one must appear in the
generated headers / Swift sources. Also checks that the two Swift files can share one Swift module
(no top-level declaration of the same name outside fileprivate scope).

Usage: scripts/check-swift-bindings.py LIBRARY SWIFT_DIR
"""

import re
import subprocess
import sys
from pathlib import Path

lib, out = Path(sys.argv[1]), Path(sys.argv[2])
passed, failures = 0, []


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)


def camel(snake):
    head, *rest = snake.lower().split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


# --- files -------------------------------------------------------------------------------------
files = ["Fenlei.swift", "FenleiCore.swift", "fenlei_ffiFFI.h", "fenlei_coreFFI.h", "module.modulemap"]
for f in files:
    check((out / f).is_file() and (out / f).stat().st_size > 0, f"missing or empty: {f}")
if failures:
    print("\n".join(failures))
    print(f"swift-bindings: {passed} passed, {len(failures)} failed")
    sys.exit(1)

modulemap = (out / "module.modulemap").read_text()
check(re.search(r"^module FenleiFFI \{", modulemap, re.M) is not None, "modulemap does not declare module FenleiFFI")
for h in ("fenlei_ffiFFI.h", "fenlei_coreFFI.h"):
    check(f'header "{h}"' in modulemap, f"modulemap does not list {h}")

swift = (out / "Fenlei.swift").read_text() + (out / "FenleiCore.swift").read_text()
headers = (out / "fenlei_ffiFFI.h").read_text() + (out / "fenlei_coreFFI.h").read_text()
for f in ("Fenlei.swift", "FenleiCore.swift"):
    check("import FenleiFFI" in (out / f).read_text(), f"{f} does not import FenleiFFI")

# --- every exported C function is declared and called --------------------------------------------
nm = subprocess.run(["nm", "--defined-only", str(lib)], check=True, capture_output=True, text=True).stdout
symbols = {line.split()[-1] for line in nm.splitlines() if line.strip()}
fns = sorted(s for s in symbols if re.match(r"^(uniffi_fenlei_(ffi|core)_(fn|checksum)_|ffi_fenlei_(ffi|core)_)", s))
check(len(fns) > 50, f"only {len(fns)} exported uniffi functions found in {lib}")
for fn in fns:
    check(re.search(rf"\b{fn}\b", headers) is not None, f"header lacks {fn}")
    if fn.startswith("uniffi_fenlei_") and "_fn_" in fn and "_clone_" not in fn and "_free_" not in fn:
        check(re.search(rf"\b{fn}\b", swift) is not None, f"Swift never calls {fn}")

# --- every item of the interface has its Swift declaration -------------------------------------
meta = sorted(s for s in symbols if s.startswith("UNIFFI_META_FENLEI_"))
check(len(meta) > 60, f"only {len(meta)} metadata symbols found in {lib}")
decl = {
    "RECORD": r"public struct {}\b",
    "ENUM": r"public enum {}\b",
    "ERROR": r"enum {}: Swift\.Error",
    "INTERFACE": r"(open class|public protocol) {}\b",
}
for m in meta:
    mm = re.match(r"UNIFFI_META_FENLEI_(FFI|CORE)_([A-Z]+(?:_INTERFACE)?)_(.+)$", m)
    if not mm:
        continue
    kind, rest = mm.group(2), mm.group(3)
    if kind in decl:
        check(re.search(decl[kind].format(rest), swift, re.I) is not None, f"no Swift {kind.lower()} for {rest}")
    elif kind == "CALLBACK_INTERFACE" or kind == "TRAIT_INTERFACE":
        check(re.search(rf"public protocol {rest}\b", swift, re.I) is not None, f"no Swift protocol for {rest}")
    elif kind == "FUNC":
        check(re.search(rf"public func {camel(rest)}\(", swift) is not None, f"no Swift function {camel(rest)}")
    elif kind in ("METHOD", "CONSTRUCTOR"):
        # <OBJECT>_<NAME>: the object names have no underscore.
        obj, name = rest.split("_", 1)
        if kind == "CONSTRUCTOR" and name == "NEW":
            check(re.search(rf"class {obj}\b[^{{]*\{{[\s\S]*?public convenience init\(", swift, re.I) is not None, f"no init for {obj}")
        else:
            pat = rf"func `?{camel(name)}`?\("
            check(re.search(pat, swift) is not None, f"no Swift {kind.lower()} {obj}.{camel(name)}")

# --- one Swift module: no clashing top-level names between the two files -----------------------
def top_level(text):
    names = set()
    for line in text.splitlines():
        m = re.match(r"^(?:public |open |internal )?(?:final )?(?:class|struct|enum|protocol|func|typealias|let|var) `?(\w+)", line)
        if m:
            names.add(m.group(1))
    return names


clash = top_level((out / "Fenlei.swift").read_text()) & top_level((out / "FenleiCore.swift").read_text())
check(not clash, f"top-level names declared in both Swift files: {sorted(clash)}")

for f in failures:
    print("FAIL", f)
print(f"swift-bindings: {passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
