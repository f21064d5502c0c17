"""make check: the device code and the host tests' fakes type-checked against MicroPython
v1.28's official stubs, for each board we support.

1. main.py, boot.py, firmware/ (a package) and lib/ (by bare name, as /lib on the device)
   go through pyright set up as the stubs' authors recommend: the stubs replace CPython's
   standard library (typeshedPath) and nothing of the host's Python is on the path. An
   error that means misuse of the device's API (an unknown module, attribute, import name
   or keyword, a wrong number of arguments) fails the check; typing noise (optional
   narrowing, unions of dict values) is only counted (--noise lists it).
2. Every name host_tests' fakes offer for a device module must exist in the stub, with
   parameters that accept the same calls: a generated file asks pyright, for each name,
   whether the stub's function takes every call the fake's takes. A fake is a module in
   host_tests/fakes/ (named as the module it fakes), or a class in a test marked
   `# fake of module X` or `# fake of X.Y`. What only the tests use (how they drive and
   inspect a fake) carries a `# test-only` comment on its line and is left out. The
   integer constants a fake sets must have the stub's values. A function marked
   `# get or set` stands for the device's two forms of one call, `f(name)` to read one
   value or `f(key=value, ...)` to set (WLAN.config): it is checked as those two, never
   with both at once.

Where a stub is wrong (about the device code or a fake), tools/check/allow.txt says so,
with the reason and the MicroPython source line that proves it (checked against $MPY_DIR
when it is set). Installs what it needs itself: the stubs per board with pip into
.stubs/<board>, pyright with npm into .stubs/pyright.
"""
import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUBS = os.path.join(ROOT, ".stubs")
PYRIGHT_VERSION = "1.1.414"
BOARDS = ("esp32_generic_c3", "esp32_generic")
DEVICE_CODE = ("main.py", "boot.py", "firmware", "lib")
# Not device code: MicroPython's freezing tool runs it on the host (module(), package())
NOT_DEVICE = ("firmware/manifest.py",)
ALLOW = os.path.join(ROOT, "tools", "check", "allow.txt")

BUILTIN_TYPES = {"int", "str", "bytes", "bytearray", "memoryview", "float", "bool", "dict",
                 "list", "tuple", "set", "NoneType", "None", "object", "function"}
CALL_MISUSE = re.compile(r'^(No parameter named|Expected \d+ positional argument|Too many positional'
                         r'|Arguments? missing for parameter)')
OVERLOAD = re.compile(r'^No overloads for "(\w+)"')
ATTR_CLASS = re.compile(r'^Cannot (?:access|assign to) attribute "(\w+)" for class "(.+)"$')
FAKE_MARK = re.compile(r"#\s*fake of (module )?([\w.]+)")
TEST_ONLY = "# test-only"
GET_OR_SET = "# get or set"


def rel(path):
    return os.path.relpath(path, ROOT)


# ---------------------------------------------------------------- installing

def ensure_installed(boards, quiet=False):
    """The pinned stubs per board (pip --target) and pyright (npm), once."""
    for board in boards:
        req = os.path.join(ROOT, "tools", "check", board + ".txt")
        want = open(req).read()
        dest = os.path.join(STUBS, board)
        stamp = os.path.join(dest, ".installed")
        if os.path.exists(stamp) and open(stamp).read() == want:
            continue
        shutil.rmtree(dest, ignore_errors=True)
        if not quiet:
            print("check: installing the %s stubs into %s" % (board, rel(dest)))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-deps", "--target", dest, "-r", req], check=True)
        with open(stamp, "w") as f:
            f.write(want)
    dest = os.path.join(STUBS, "pyright")
    stamp = os.path.join(dest, ".installed")
    if not (os.path.exists(stamp) and open(stamp).read() == PYRIGHT_VERSION):
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        if not shutil.which("npm"):
            subprocess.run([os.path.join(ROOT, "tools", "apt-ensure"), "npm", "nodejs", "npm"], check=True)
        if not quiet:
            print("check: installing pyright %s into %s" % (PYRIGHT_VERSION, rel(dest)))
        subprocess.run(["npm", "install", "--silent", "--no-save", "--no-package-lock", "--no-audit",
                        "--no-fund", "--prefix", dest, "pyright@" + PYRIGHT_VERSION], check=True)
        with open(stamp, "w") as f:
            f.write(PYRIGHT_VERSION)
    return os.path.join(dest, "node_modules", ".bin", "pyright")


# ---------------------------------------------------------------- the fakes

class Fake:
    """One fake: a module fake (whole file) or a marked class standing for a module or a
    class of one."""

    def __init__(self, path, module, cls=None, target_cls=None, as_module=False):
        self.path = path
        self.module = module          # the device module faked
        self.cls = cls                # the fake's class node (None: the whole file)
        self.target_cls = target_cls  # the stub class it stands for (None: the module)
        self.as_module = as_module


def _marked(lines, node):
    return TEST_ONLY in lines[node.lineno - 1]


def _public(name):
    return not name.startswith("_")


def find_fakes(fakes_dir, test_files):
    fakes = []
    for name in sorted(os.listdir(fakes_dir)):
        if name.endswith(".py"):
            fakes.append(Fake(os.path.join(fakes_dir, name), name[:-3]))
    for path in list(test_files) + [f.path for f in fakes]:
        text = open(path).read()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                m = FAKE_MARK.search(text.splitlines()[node.lineno - 1])
                if not m:
                    continue
                if m.group(1):
                    fakes.append(Fake(path, m.group(2), node, None, True))
                else:
                    mod, _, cls = m.group(2).rpartition(".")
                    fakes.append(Fake(path, mod, node, cls))
    return fakes


def _class_members(cls, lines):
    """(methods, class attributes, instance attributes) a fake class offers: (name, line)."""
    methods, attrs, inst = [], [], {}
    for st in cls.body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if _public(st.name) and not _marked(lines, st):
                methods.append((st.name, st.lineno))
            for sub in ast.walk(st):
                targets = []
                if isinstance(sub, ast.Assign):
                    targets = sub.targets
                elif isinstance(sub, (ast.AugAssign, ast.AnnAssign)):
                    targets = [sub.target]
                for t in targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        entry = inst.setdefault(t.attr, [t.lineno, False])
                        entry[1] = entry[1] or TEST_ONLY in lines[t.lineno - 1]
        elif isinstance(st, ast.Assign):
            for t in st.targets:
                if isinstance(t, ast.Name) and _public(t.id) and not _marked(lines, st):
                    attrs.append((t.id, st.lineno))
    names = set(n for n, _ in methods) | set(n for n, _ in attrs)
    inst_list = [(n, ln) for n, (ln, hook) in sorted(inst.items(), key=lambda kv: kv[1][0])
                 if _public(n) and not hook and n not in names]
    return methods, attrs, inst_list


def _shapes(fn, method, get_or_set=False):
    """The fake's signature as the calls it takes, one signature per number of positional
    arguments (an overloaded stub function takes each with another overload). Parameters
    keep their names (`__x`: positional-only, as MicroPython has no `/`); types are Any
    (object for *args and **kw: pyright takes `*args: Any, **kw: Any` for any call):
    what is checked is which calls are taken, not the values."""
    a = fn.args
    pos = [x.arg for x in a.posonlyargs + a.args]
    nreq = len(pos) - len(a.defaults)
    if method:
        pos, nreq = pos[1:], max(0, nreq - 1)
    for k in range(nreq, len(pos) + 1):
        parts = ["%s: Any" % p for p in pos[:k]]
        if a.vararg and k == len(pos):
            parts.append("*%s: object" % a.vararg.arg)
        elif a.kwonlyargs:
            parts.append("*")
        for kw, d in zip(a.kwonlyargs, a.kw_defaults):
            parts.append("%s: Any%s" % (kw.arg, "" if d is None else " = ..."))
        if a.kwarg and not (get_or_set and k):  # get or set: a name, or keywords
            parts.append("**%s: object" % a.kwarg.arg)
        yield ", ".join(parts)


def _init(cls):
    for st in cls.body:
        if isinstance(st, ast.FunctionDef) and st.name == "__init__":
            return st
    return ast.parse("def __init__(self): pass").body[0]


def generate_fake_check(fakes, out_dir):
    """A file for pyright: for every name a fake offers, the stub's must exist and take
    every call the fake's takes. Returns (path, {line: (fake file, fake line, what)})."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    out = ["# Generated by tools/check.py: the fakes against the stubs. Do not edit.",
           "from typing import Any, Callable, ParamSpec",
           "P = ParamSpec('P')",
           "def accepts(fake: Callable[P, Any]) -> Callable[[Callable[P, Any]], None]: ...",
           "def has(x: object) -> None: ..."]
    for m in sorted(set(f.module for f in fakes)):
        out.append("import %s as real_%s" % (m, m.replace(".", "_")))
    where = {}
    counter = [0]

    def emit(line, fake, lineno, what):
        where[len(out) + 1] = (rel(fake.path), lineno, what)
        out.append(line)

    def calls(indent, fn, method, target, fake, what, lines):
        for shape in _shapes(fn, method, GET_OR_SET in lines[fn.lineno - 1]):
            counter[0] += 1
            name = "s%d" % counter[0]
            out.append("%sdef %s(%s) -> Any: ..." % (indent, name, shape))
            emit("%saccepts(%s)(%s)" % (indent, name, target), fake, fn.lineno, "%s(%s)" % (what, shape))

    def members(fake, cls, lines, real_t, label, module):
        counter[0] += 1
        out.append("def c%d(%s) -> None:" % (counter[0], "" if module else "r: " + real_t))
        out.append("    pass")
        r = real_t if module else "r"
        methods, attrs, inst = _class_members(cls, lines)
        for st in cls.body:
            if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)) and st.name in dict(methods):
                calls("    ", st, True, "%s.%s" % (r, st.name), fake, "%s.%s" % (label, st.name), lines)
        for name, ln in attrs + inst:
            emit("    has(%s.%s)" % (r, name), fake, ln, "%s.%s" % (label, name))

    for f in fakes:
        text = open(f.path).read()
        lines = text.splitlines()
        real = "real_" + f.module.replace(".", "_")
        if f.cls is None:  # a module fake: every public top-level name
            for st in ast.parse(text).body:
                if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if _public(st.name) and not _marked(lines, st):
                        calls("", st, False, "%s.%s" % (real, st.name), f, "%s.%s" % (f.module, st.name), lines)
                elif isinstance(st, ast.Assign):
                    for t in st.targets:
                        if isinstance(t, ast.Name) and _public(t.id) and not _marked(lines, st):
                            emit("has(%s.%s)" % (real, t.id), f, st.lineno, "%s.%s" % (f.module, t.id))
                elif isinstance(st, ast.ClassDef) and _public(st.name) and not _marked(lines, st):
                    label = "%s.%s" % (f.module, st.name)
                    calls("", _init(st), True, "%s.%s" % (real, st.name), f, label, lines)
                    members(f, st, lines, "%s.%s" % (real, st.name), label, False)
        elif f.as_module:
            members(f, f.cls, lines, real, f.module, True)
        else:
            members(f, f.cls, lines, "%s.%s" % (real, f.target_cls), "%s.%s" % (f.module, f.target_cls), False)
    path = os.path.join(out_dir, "check_fakes.py")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    return path, where


def _int_consts(body, lines=None):
    """{name: (value, line)} of the integer constants a module or class body sets."""
    out = {}
    for st in body:
        if lines is not None and _marked(lines, st):
            continue
        if isinstance(st, ast.AnnAssign):
            targets, value = [st.target], st.value
        elif isinstance(st, ast.Assign):
            targets, value = st.targets, st.value
        else:
            continue
        if isinstance(value, ast.Constant) and type(value.value) is int:
            for t in targets:
                if isinstance(t, ast.Name):
                    out[t.id] = (value.value, st.lineno)
    return out


def _stub_tree(stub_dir, module):
    for rel_path in (module + ".pyi", module + "/__init__.pyi", "stdlib/" + module + ".pyi",
                     "stdlib/" + module + "/__init__.pyi"):
        path = os.path.join(stub_dir, rel_path)
        if os.path.exists(path):
            return ast.parse(open(path).read())
    return None


def fake_constants(fakes, stub_dir):
    """Integer constants a fake gives another value than the stub does (Pin.PULL_UP...)."""
    bad = []
    for f in fakes:
        tree = _stub_tree(stub_dir, f.module)
        if tree is None:
            continue
        stub_classes = dict((c.name, c) for c in tree.body if isinstance(c, ast.ClassDef))
        text = open(f.path).read()
        lines = text.splitlines()
        pairs = []  # (fake body, stub body, label)
        if f.cls is None:
            fake_tree = ast.parse(text)
            pairs.append((fake_tree.body, tree.body, f.module))
            for c in fake_tree.body:
                if isinstance(c, ast.ClassDef) and c.name in stub_classes:
                    pairs.append((c.body, stub_classes[c.name].body, "%s.%s" % (f.module, c.name)))
        elif f.as_module:
            pairs.append((f.cls.body, tree.body, f.module))
        elif f.target_cls in stub_classes:
            pairs.append((f.cls.body, stub_classes[f.target_cls].body, "%s.%s" % (f.module, f.target_cls)))
        for fake_body, stub_body, label in pairs:
            want = _int_consts(stub_body)
            for name, (value, line) in sorted(_int_consts(fake_body, lines).items()):
                if name in want and want[name][0] != value:
                    bad.append("%s:%d: %s.%s = %d, the stub says %d" % (
                        rel(f.path), line, label, name, value, want[name][0]))
    return bad


# ---------------------------------------------------------------- the allow-list

def load_allow(path):
    """Entries: `file: message part`, then indented `why:` and `proof: path:line: text`."""
    entries, cur = [], None
    for n, line in enumerate(open(path).read().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            file, _, msg = line.partition(": ")
            cur = {"file": file.strip(), "message": msg.strip(), "line": n, "used": 0}
            entries.append(cur)
        elif cur is not None:
            key, _, val = line.strip().partition(":")
            cur[key.strip()] = val.strip()
    problems = []
    for e in entries:
        for key in ("why", "proof"):
            if not e.get(key):
                problems.append("%s:%d: the entry has no %s" % (rel(path), e["line"], key))
    return entries, problems


def check_proofs(entries, mpy_dir, path):
    problems = []
    for e in entries:
        m = re.match(r"^([^:]+):(\d+): (.+)$", e.get("proof", ""))
        if not m:
            problems.append("%s:%d: proof must be `path:line: text`" % (rel(path), e["line"]))
            continue
        if not mpy_dir:
            continue
        src = os.path.join(mpy_dir, m.group(1))
        try:
            line = open(src).read().splitlines()[int(m.group(2)) - 1]
        except (OSError, IndexError):
            line = None
        if line is None or m.group(3).strip() not in line:
            problems.append("%s:%d: proof %s:%s does not say %r in $MPY_DIR" % (
                rel(path), e["line"], m.group(1), m.group(2), m.group(3)))
    return problems


# ---------------------------------------------------------------- pyright

def run_pyright(pyright, board, files, extra_paths):
    cfg_dir = os.path.join(STUBS, "run-" + board)
    os.makedirs(cfg_dir, exist_ok=True)
    novenv = os.path.join(cfg_dir, "novenv")
    os.makedirs(os.path.join(novenv, "lib", "python3.11", "site-packages"), exist_ok=True)  # any 3.x
    with open(os.path.join(novenv, "pyvenv.cfg"), "w") as f:
        f.write("home = /nonexistent\n")
    stubs = os.path.join(STUBS, board)
    cfg = {
        # pyright takes only paths relative to its configuration file here
        "include": [os.path.relpath(p, cfg_dir) for p in files],
        "exclude": [os.path.relpath(os.path.join(ROOT, p), cfg_dir) for p in NOT_DEVICE],
        "typeshedPath": stubs,
        "stubPath": stubs,
        "extraPaths": extra_paths,
        # nothing of the host's Python: an empty environment
        "venvPath": cfg_dir,
        "venv": "novenv",
        "pythonPlatform": "Linux",
        "typeCheckingMode": "basic",
        "reportMissingModuleSource": "none",
    }
    path = os.path.join(cfg_dir, "pyrightconfig.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    # started here, read by finish_pyright: the boards run side by side
    return subprocess.Popen([pyright, "-p", path, "--outputjson"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True), len(files)


def finish_pyright(run):
    p, nfiles = run
    stdout, stderr = p.communicate()
    try:
        out = json.loads(stdout)
        n = out["summary"]["filesAnalyzed"]
    except (ValueError, KeyError):
        n = -1
    if n < nfiles:  # a directory counts once here, and is several files
        sys.stderr.write(stdout + stderr)
        raise SystemExit("check: pyright analysed %d files of %d (exit status %d)" % (n, nfiles, p.returncode))
    return out["generalDiagnostics"]


def project_classes():
    names = set()
    for d in ("firmware", "lib"):
        for name in os.listdir(os.path.join(ROOT, d)):
            if name.endswith(".py"):
                names.update(re.findall(r"^\s*class (\w+)", open(os.path.join(ROOT, d, name)).read(), re.M))
    return names


def is_api_error(d, ours):
    """Misuse of the device's API (True) or typing noise (False)."""
    rule = d.get("rule", "")
    msg = d["message"].splitlines()[0]
    if d.get("severity") != "error":
        return False
    if rule in ("reportMissingImports", "reportUndefinedVariable", "reportAttributeAccessIssue") \
            and ("is not a known attribute of module" in msg or "is unknown import symbol" in msg
                 or rule != "reportAttributeAccessIssue"):
        return True
    if rule == "reportAttributeAccessIssue":
        m = ATTR_CLASS.match(msg)
        cls = m.group(2) if m else ""
        if cls.startswith("Literal["):  # a literal is of a builtin type
            cls = "int"
        cls = cls.split("[")[0]  # list[str] -> list, type[X] stays type: the class object
        if cls == "type":
            cls = m.group(2)[5:-1]
        return bool(m) and cls not in BUILTIN_TYPES and cls not in ours
    if rule == "reportCallIssue":
        if CALL_MISUSE.match(msg):
            return True
        m = OVERLOAD.match(msg)
        return bool(m) and not (m.group(1).startswith("__") and m.group(1) not in ("__init__", "__new__", "__call__"))
    return not rule  # a syntax error has no rule


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", action="append", choices=BOARDS, help="only this board (default: all)")
    ap.add_argument("--noise", action="store_true", help="list the typing noise too")
    ap.add_argument("--fakes", default=os.path.join(ROOT, "host_tests", "fakes"), help="the module fakes' directory")
    ap.add_argument("--fake-tests", nargs="*", help="files with marked fake classes (default: host_tests/*.py)")
    ap.add_argument("--code", nargs="*", default=[], help="more device code to check")
    ap.add_argument("--fakes-only", action="store_true", help="only the fakes (and --code)")
    ap.add_argument("--allow", default=ALLOW, help="the allow-list (default: tools/check/allow.txt)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    boards = args.board or BOARDS
    pyright = ensure_installed(boards)
    t_install = time.monotonic() - t0

    tests = args.fake_tests
    if tests is None:
        hd = os.path.join(ROOT, "host_tests")
        tests = [os.path.join(hd, n) for n in sorted(os.listdir(hd)) if n.endswith(".py")]
    fakes = find_fakes(args.fakes, tests)
    gen_dir = os.path.join(STUBS, "fakecheck")
    gen, where = generate_fake_check(fakes, gen_dir)

    entries, problems = load_allow(args.allow)
    problems += check_proofs(entries, os.environ.get("MPY_DIR"), args.allow)
    files = [os.path.abspath(c) for c in args.code] + [gen]
    if not args.fakes_only:
        files = [os.path.join(ROOT, p) for p in DEVICE_CODE] + files
    ours = project_classes()
    failed = bool(problems)
    for p in problems:
        print("check: allow-list: " + p)
    runs = [run_pyright(pyright, board, files, [os.path.join(ROOT, "lib"), ROOT]) for board in boards]
    for board, run in zip(boards, runs):
        api, allowed, noise, fake_errs = [], [], [], []
        for d in finish_pyright(run):
            file = d["file"]
            line = d["range"]["start"]["line"] + 1
            col = d["range"]["start"]["character"] + 1
            text = "%s:%d:%d: %s [%s]" % (rel(file), line, col, d["message"].splitlines()[0], d.get("rule", ""))
            if file == gen:
                if d.get("severity") == "error":
                    src, ln, what = where.get(line, ("?", 0, "?"))
                    fake_errs.append("%s:%d: the fake offers %s, the stub does not take it: %s" % (
                        src, ln, what, " / ".join(s.strip() for s in d["message"].splitlines()[:3])))
                continue
            if not is_api_error(d, ours):
                noise.append(text)
                continue
            hit = [e for e in entries if rel(file) == e["file"] and e["message"] in d["message"]]
            if hit:
                hit[0]["used"] += 1
                allowed.append(text)
            else:
                api.append(text)
        consts = fake_constants(fakes, os.path.join(STUBS, board))
        kept = []
        for t in fake_errs + consts:  # a stub wrong about what a fake offers: allowed the same way
            hit = [e for e in entries if t.startswith(e["file"] + ":") and e["message"] in t]
            if hit:
                hit[0]["used"] += 1
                allowed.append(t)
            else:
                kept.append(t)
        fake_errs, consts = kept, []
        for t in api:
            print("check: %s: API error: %s" % (board, t))
        for t in fake_errs + consts:
            print("check: %s: fake: %s" % (board, t))
        if args.noise:
            for t in noise:
                print("check: %s: noise: %s" % (board, t))
        print("check: %s: %d API errors, %d fake mismatches, %d allowed (the allow-list), "
              "%d typing noise (not failing; --noise lists them)" % (
                  board, len(api), len(fake_errs) + len(consts), len(allowed), len(noise)))
        failed = failed or bool(api or fake_errs or consts)
    if not args.fakes_only and not args.code:
        for e in entries:
            if not e["used"]:
                failed = True
                print("check: allow-list: %s:%d: matches nothing any more: remove it" % (rel(args.allow), e["line"]))
    print("check: %s in %.1f s (installing %.1f s)" % ("FAILED" if failed else "ok", time.monotonic() - t0, t_install))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
