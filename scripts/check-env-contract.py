#!/usr/bin/env python3
"""Compare the environment variables the binaries read with the ones the ECS
task definitions set, in both directions; and check that every default has one
source, core/src/defaults.rs, which clap and Terraform's variables agree with
(see "Defaults: one source" below).

Read side: every `env = "NAME"` (clap's `#[arg(env = ...)]`) and every
`env::var("NAME")` / `env::var_os("NAME")` in bins/src/**/*.rs. When the clap
structs can be attributed to binaries (a struct whose #[command(...)] says
name = "gift-api" / "gift-worker" / "gift-local", plus every struct it
flattens, recursively), the comparison is per container: gift-api against the
api task definition, gift-worker against the worker's; gift-local is never
deployed. Otherwise it falls back to the union of both containers.
Set side: the plain maps in terraform/ecs.tf that make up the app
containers' environment and secrets:
    app_common_environment, api_only_environment, worker_only_environment, app_secrets,
    migrate_environment, migrate_secrets
(the api container gets common + api_only + secrets, the worker common +
worker_only + secrets, the one-off migrate task migrate_environment +
migrate_secrets). The Datadog agent and FireLens sidecars have their own
environment (DD_SITE, DD_API_KEY, ECS_FARGATE, ...) that the binaries never
see; it is not part of this contract and is not compared.

The migrate task runs `gift-admin migrate`, one subcommand of a binary whose
other subcommands read more (the operator runs those with the worker's
environment), so it is compared one way and against a list: every name it sets
must be read by gift-admin, and it must set MIGRATE_NEEDS. While bins/src has
no gift-admin, only the list is checked, and the report says so.

gift-admin's other subcommands (show, list-*, redrive-dlq, retry) run as
one-off tasks of the worker's task definition (docs/runbook.md). So the worker
task definition must also set every name those subcommands read (SQS_DLQ_URL
for redrive-dlq, for one), and a name it sets that gift-worker does not read
is not dead config when gift-admin reads it outside `migrate`.

Rules (per container, or on the union in fallback mode)
  * read but not set                         -> error (the incident of 000_*:
    the app read DATABASE_URL while Terraform set DB_*; every task failed);
    for the worker task definition, also what gift-admin reads outside migrate
  * set but not read                         -> error (dead, misplaced or misspelt config);
    in the worker task definition, read by gift-worker or by gift-admin outside migrate
  * LOCAL_ONLY names must not be set by Terraform:
      AWS_ENDPOINT_URL_SQS  points the SQS client at a local emulator
      DATABASE_URL          the alternative to DB_*; Terraform uses the split form
      EFFECT_LOG, NODE_NAME the effect tap of the real-stack run (docs/testing.md)
  * a name may not be both a plain variable and a secret.
AWS_REGION needs no exception: the binaries read it, and the task definitions
set it explicitly (Fargate would also inject it).

Defaults: one source
core/src/defaults.rs holds every setting's default as `pub const NAME: T = VALUE;`,
NAME being the environment variable that overrides it. Its values are
evaluated without running code: number literals with `_` separators and type
suffixes (1_000, 5u32), simple arithmetic (16 * 1024, 15 * 60, 1 << 20),
`as` casts, earlier constants by name, bools and plain string literals;
anything else is reported as unevaluable where it must be compared.
  * unread-constant  a constant that is no clap arg's `default_value_t =
                     defaults::NAME` in bins/src (a default nobody reads)  -> error
  * literal-default  an arg with `env = "NAME"` for a NAME defaults.rs defines
                     whose default is anything but defaults::NAME (a literal
                     `default_value_t = 10`, a `default_value = "10"`): it
                     bypasses the one source                              -> error
  * constant-name    `default_value_t = defaults::X` on `env = "Y"` (X != Y),
                     or a defaults::X that defaults.rs lacks              -> error
  * tf-default       every env name in app_common_environment, api_only_environment,
                     worker_only_environment or migrate_environment that is set
                     from a variable (`tostring(var.X)` or `var.X`) and has a
                     constant: var.X's default (in terraform/*.tf) equals the
                     constant, compared numerically                       -> error
                     unless DEFAULT_EXCEPTIONS lists (NAME, X) with the reason.
                     A variable without a default, or a name set from anything
                     but a variable, is listed and not compared.
  * exception        a DEFAULT_EXCEPTIONS entry whose values now agree, or whose
                     (NAME, X) ecs.tf no longer sets                      -> error
Today there is none: DB_POOL_MAX, which worker_db_pool_max once set apart
from the constant, is 5 in both.

--self-test runs the defaults rules on small hand-made fixtures in a temporary
directory: a consistent one (arithmetic, separators, a float, a named
exception) must pass, and each broken one (a Terraform default that
disagrees, a constant nobody reads, a clap literal default bypassing
defaults.rs, a stale exception, ...) must be caught by its rule.

Usage: check-env-contract.py [--repo DIR] [--bins-src DIR] [--ecs-tf FILE]
                             [--defaults-rs FILE] [--self-test]
Exit 0 when the contract and the defaults hold (or every self-test fixture
behaves), 1 otherwise. Needs the `hcl2` module (bc-python-hcl2, installed with
checkov in scripts/check-infra's venv).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
from pathlib import Path

LOCAL_ONLY = {
    "AWS_ENDPOINT_URL_SQS": "local SQS emulator endpoint; in AWS the SDK default is right",
    "DATABASE_URL": "alternative to the DB_* form that Terraform sets",
    "EFFECT_LOG": "the effect tap of the real-stack run (gift-stack); never on in production",
    "NODE_NAME": "the process's name in the effect log (api-1, worker-2)",
}
CONTRACT_MAPS = (
    "app_common_environment",
    "api_only_environment",
    "worker_only_environment",
    "app_secrets",
    "migrate_environment",
    "migrate_secrets",
)
# What `gift-admin migrate` needs: the master user's connection, and the app
# role it creates and gives a password.
MIGRATE_NEEDS = {
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "DB_SSLMODE",
    "APP_DB_USER",
    "APP_DB_PASSWORD",
}

CLAP_ENV = re.compile(r'\benv\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)"')
STD_ENV = re.compile(r'\benv::var(?:_os)?\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)')


def strip_line_comments(line: str) -> str:
    """Drop a trailing // comment (good enough for attribute lines; no // inside the strings we match)."""
    idx = line.find("//")
    return line if idx < 0 else line[:idx]


STRUCT_START = re.compile(r"^\s*pub\s+struct\s+(\w+)\s*\{")
ENUM_START = re.compile(r"^pub\s+enum\s+(\w+)\s*\{")
TUPLE_VARIANT = re.compile(r"^\s{4}(\w+)\s*\(\s*(\w+)\s*\)\s*,?\s*$")
STRUCT_VARIANT = re.compile(r"^\s{4}(\w+)\s*\{\s*$")
# A field, `pub name: Type` (a struct's) or `name: Type` (a struct variant's).
FIELD = re.compile(r"^\s*(?:pub\s+)?\w+\s*:\s*(?:Option<)?(\w+)")
BINARY_NAME = re.compile(r'\bname\s*=\s*"(gift-[a-z]+)"')
BIN_FILE = re.compile(r"(?:^|/)bin/(gift-[a-z]+)\.rs$")


class Reads:
    """Where each name is read, and by which binary when that can be told."""

    def __init__(self) -> None:
        self.where: dict[str, list[str]] = {}
        self.struct_names: dict[str, set[str]] = {}  # struct -> env names in its own fields
        self.struct_flattens: dict[str, set[str]] = {}  # struct -> flattened field types
        self.binary_struct: dict[str, str] = {}  # gift-api -> ApiServiceConfig
        self.direct: dict[str, set[str]] = {}  # binary or "shared" -> env::var names
        self.subcommand_enum: dict[str, str] = {}  # struct -> the enum of its #[command(subcommand)] field
        # A subcommand, "Enum::Variant", is read like a struct: its own env names
        # (struct variant) and the structs it flattens or wraps (tuple variant).
        # names_of_struct leaves subcommands out; names_of_subcommand adds one.

    def add(self, name: str, where: str) -> None:
        self.where.setdefault(name, []).append(where)

    def names_of_struct(self, struct: str, seen: frozenset = frozenset()) -> set[str]:
        if struct in seen:
            return set()
        names = set(self.struct_names.get(struct, set()))
        for inner in self.struct_flattens.get(struct, set()):
            names |= self.names_of_struct(inner, seen | {struct})
        return names

    def names_of_subcommand(self, struct: str, variant: str) -> set[str] | None:
        """What one subcommand of the binary struct `struct` reads, globals included; None if not found."""
        enum = self.subcommand_enum.get(struct)
        key = f"{enum}::{variant}"
        if enum is None or key not in self.struct_names:
            return None
        return self.names_of_struct(struct) | self.names_of_struct(key)

    def subcommands(self, struct: str) -> list[str]:
        """The variants of the subcommand enum of the binary struct `struct`, sorted."""
        enum = self.subcommand_enum.get(struct)
        if enum is None:
            return []
        return sorted(k.split("::", 1)[1] for k in self.struct_names if k.startswith(f"{enum}::"))

    def per_binary(self) -> dict[str, set[str]] | None:
        if "gift-api" not in self.binary_struct or "gift-worker" not in self.binary_struct:
            return None
        out = {b: self.names_of_struct(st) for b, st in self.binary_struct.items()}
        for b, names in self.direct.items():
            if b != "shared":
                out.setdefault(b, set()).update(names)
        return out


def names_read(bins_src: Path) -> Reads:
    reads = Reads()
    for path in sorted(bins_src.rglob("*.rs")):
        lines = path.read_text(encoding="utf-8").splitlines()
        file_bin = BIN_FILE.search(path.as_posix())
        current: str | None = None  # the struct, or "Enum::Variant", whose fields these are
        enum: str | None = None  # inside `pub enum Enum {`
        flatten_next = False
        subcommand_next = False
        for idx, raw in enumerate(lines):
            line = strip_line_comments(raw)
            where = f"{path.as_posix()}:{idx + 1}"
            m = STRUCT_START.match(line)
            if m and enum is None:
                current = m.group(1)
                reads.struct_names.setdefault(current, set())
                reads.struct_flattens.setdefault(current, set())
                # The attributes above the struct, back to a blank line or a closing brace.
                back = idx - 1
                header: list[str] = []
                while back >= 0 and lines[back].strip() and not lines[back].startswith("}"):
                    header.append(lines[back])
                    back -= 1
                b = BINARY_NAME.search("\n".join(header))
                if b:
                    reads.binary_struct[b.group(1)] = current
                continue
            e = ENUM_START.match(line)
            if e:
                enum, current = e.group(1), None
                continue
            if enum is not None:
                if raw.startswith("}"):
                    enum = current = None
                    continue
                tv = TUPLE_VARIANT.match(line)
                sv = STRUCT_VARIANT.match(line)
                if tv:
                    key = f"{enum}::{tv.group(1)}"
                    reads.struct_names.setdefault(key, set())
                    reads.struct_flattens.setdefault(key, set()).add(tv.group(2))
                    current = None
                    continue
                if sv:
                    current = f"{enum}::{sv.group(1)}"
                    reads.struct_names.setdefault(current, set())
                    reads.struct_flattens.setdefault(current, set())
                    continue
                if re.match(r"^\s{4}\}", raw):
                    current = None
                    continue
            elif current is not None and raw.startswith("}"):
                current = None
                continue
            for cm in CLAP_ENV.finditer(line):
                reads.add(cm.group(1), where)
                if current is not None:
                    reads.struct_names[current].add(cm.group(1))
            for sm in STD_ENV.finditer(line):
                reads.add(sm.group(1), where)
                owner = file_bin.group(1) if file_bin else "shared"
                reads.direct.setdefault(owner, set()).add(sm.group(1))
            if current is not None:
                attr = line.strip().startswith("#[")
                if attr and "flatten" in line:
                    flatten_next = True
                elif attr and "subcommand" in line:
                    subcommand_next = True
                elif FIELD.match(line) and (flatten_next or subcommand_next):
                    field_type = FIELD.match(line).group(1)
                    if flatten_next:
                        reads.struct_flattens[current].add(field_type)
                    else:
                        reads.subcommand_enum[current] = field_type
                    flatten_next = subcommand_next = False
    return reads


def kebab(variant: str) -> str:
    """A clap subcommand's name from its variant: RedriveDlq -> redrive-dlq."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", variant).lower()


def unwrap(value):
    # bc-python-hcl2 wraps attribute values in one-element lists.
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def names_set(ecs_tf: Path) -> dict[str, set[str]]:
    try:
        import hcl2  # type: ignore
    except ImportError:
        sys.exit("check-env-contract: the hcl2 module is missing; run scripts/check-infra (it installs it with checkov)")

    with ecs_tf.open(encoding="utf-8") as fh:
        doc = hcl2.load(fh)

    maps: dict[str, set[str]] = {}
    for block in doc.get("locals", []):
        for key, value in block.items():
            if key in CONTRACT_MAPS:
                value = unwrap(value)
                if not isinstance(value, dict):
                    sys.exit(f"check-env-contract: local.{key} in {ecs_tf} must be a plain map literal, got: {value!r}")
                maps[key] = set(value.keys())

    missing = [k for k in CONTRACT_MAPS if k not in maps]
    if missing:
        sys.exit(f"check-env-contract: {ecs_tf} defines no local(s) {', '.join(missing)}")

    # The maps only matter if the containers are built from them.
    text = ecs_tf.read_text(encoding="utf-8")
    for needle in (
        "merge(local.app_common_environment, local.api_only_environment)",
        "merge(local.app_common_environment, local.worker_only_environment)",
        "local.app_secrets",
        "keys(local.migrate_environment)",
        "keys(local.migrate_secrets)",
    ):
        if needle not in text:
            sys.exit(f"check-env-contract: {ecs_tf} no longer builds the containers from `{needle}`; update this check")
    return maps


# --- defaults: one source ------------------------------------------------------------
#
# core/src/defaults.rs holds every setting's default as `pub const NAME: T = VALUE;`,
# NAME being the environment variable that overrides it. clap reads them
# (`default_value_t = defaults::NAME`) and Terraform's variables must default to
# the same values, unless DEFAULT_EXCEPTIONS names the difference and says why.

# (env name, Terraform variable) -> why that variable's default deliberately
# differs from the constant in core/src/defaults.rs. An entry whose pair ecs.tf
# no longer sets, or whose values now agree, is an error (a stale exception).
DEFAULT_EXCEPTIONS: dict[tuple[str, str], str] = {}
# The maps whose values are compared (the secrets are ARNs, never defaults).
VALUE_MAPS = ("app_common_environment", "api_only_environment", "worker_only_environment", "migrate_environment")

RUST_CONST = re.compile(
    r"^[ \t]*pub(?:\([^)]*\))?[ \t]+const[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]*([^=;]+?)[ \t]*=\s*([^;]+);",
    re.MULTILINE,
)
RUST_INT_TYPES = r"(?:u8|u16|u32|u64|u128|usize|i8|i16|i32|i64|i128|isize)"
RUST_NUMBER = re.compile(r"\b(\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)(?:_?(?:" + RUST_INT_TYPES[3:-1] + r"|f32|f64))?\b")
RUST_CAST = re.compile(r"\s+as\s+(?:" + RUST_INT_TYPES[3:-1] + r"|f32|f64)\b")
DEFAULTS_PATH = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*::)*defaults::([A-Za-z_][A-Za-z0-9_]*)$")
TF_FROM_VAR = re.compile(r"^\$\{\s*(?:tostring\(\s*var\.(\w+)\s*\)|var\.(\w+))\s*\}$")


class Unevaluable(ValueError):
    pass


def eval_arith(expr: str, names: dict[str, object] | None = None) -> int | float:
    """The value of a simple integer/float expression (+ - * / % << >>, parentheses,
    names of earlier constants). Walks the AST; nothing else is evaluated."""
    import ast

    names = names or {}
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise Unevaluable(f"not simple arithmetic: {expr.strip()!r}") from exc

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            value = names.get(node.id)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
            raise Unevaluable(f"unknown name {node.id} in {expr.strip()!r}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            op = node.op
            if isinstance(op, ast.Add):
                return a + b
            if isinstance(op, ast.Sub):
                return a - b
            if isinstance(op, ast.Mult):
                return a * b
            if isinstance(op, (ast.Div, ast.Mod)) and b == 0:
                raise Unevaluable(f"division by zero in {expr.strip()!r}")
            if isinstance(op, ast.Div):
                if isinstance(a, int) and isinstance(b, int):  # Rust: truncates toward zero
                    q = abs(a) // abs(b)
                    return q if (a >= 0) == (b >= 0) else -q
                return a / b
            if isinstance(op, ast.Mod) and isinstance(a, int) and isinstance(b, int):
                return a - b * (abs(a) // abs(b) if (a >= 0) == (b >= 0) else -(abs(a) // abs(b)))
            if isinstance(op, (ast.LShift, ast.RShift)) and isinstance(a, int) and isinstance(b, int) and 0 <= b < 128:
                return a << b if isinstance(op, ast.LShift) else a >> b
        raise Unevaluable(f"not simple arithmetic: {expr.strip()!r}")

    return ev(tree)


def rust_value(expr: str, names: dict[str, object]) -> object:
    """A Rust constant's value: a number (literals with `_` separators and type
    suffixes, simple arithmetic, `as` casts, earlier constants), a bool or a plain
    string literal. Raises Unevaluable otherwise."""
    text = expr.strip()
    if text in ("true", "false"):
        return text == "true"
    m = re.fullmatch(r'"([^"\\]*)"', text)
    if m:
        return m.group(1)
    text = RUST_CAST.sub("", text)
    text = RUST_NUMBER.sub(lambda n: n.group(1).replace("_", ""), text)
    return eval_arith(text, names)


def rust_defaults(defaults_rs: Path) -> tuple[dict[str, tuple[str, str, int]], dict[str, object], dict[str, str]]:
    """(name -> (type, expression, line), name -> value, name -> why it has no value)."""
    text = defaults_rs.read_text(encoding="utf-8")
    code = "\n".join(strip_line_comments(line) for line in text.splitlines())
    consts: dict[str, tuple[str, str, int]] = {}
    values: dict[str, object] = {}
    unevaluable: dict[str, str] = {}
    for m in RUST_CONST.finditer(code):
        name, rtype, expr = m.group(1), m.group(2).strip(), " ".join(m.group(3).split())
        consts[name] = (rtype, expr, code.count("\n", 0, m.start()) + 1)
        try:
            value = rust_value(expr, values)
        except Unevaluable as exc:
            unevaluable[name] = str(exc)
            continue
        if re.fullmatch(r"f32|f64", rtype) and isinstance(value, int):
            value = float(value)
        values[name] = value
    return consts, values, unevaluable


def arg_attributes(text: str) -> list[tuple[int, str]]:
    """(line, inside) of every `#[arg(...)]` in a Rust file, parentheses balanced, strings respected."""
    out = []
    for m in re.finditer(r"#\[arg\(", text):
        i, depth, quote = m.end(), 1, False
        while i < len(text) and depth:
            c = text[i]
            if quote:
                if c == "\\":
                    i += 1
                elif c == '"':
                    quote = False
            elif c == '"':
                quote = True
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            i += 1
        out.append((text.count("\n", 0, m.start()) + 1, text[m.end() : i - 1]))
    return out


def split_top_level(args: str) -> list[str]:
    """Split clap's `key = value, key = value` at the commas outside brackets and strings."""
    parts, depth, quote, cur, i = [], 0, False, "", 0
    while i < len(args):
        c = args[i]
        if quote:
            if c == "\\" and i + 1 < len(args):
                cur += c + args[i + 1]
                i += 2
                continue
            if c == '"':
                quote = False
        elif c == '"':
            quote = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            i += 1
            continue
        cur += c
        i += 1
    if cur.strip():
        parts.append(cur.strip())
    return parts


def clap_args(bins_src: Path) -> list[dict]:
    """Every #[arg(...)] in bins/src: where, env, default_value_t, default_value."""
    out = []
    for path in sorted(bins_src.rglob("*.rs")):
        text = "\n".join(strip_line_comments(line) for line in path.read_text(encoding="utf-8").splitlines())
        for line, inside in arg_attributes(text):
            arg: dict = {"where": f"{path.as_posix()}:{line}", "env": None, "default_value_t": None, "default_value": None}
            for part in split_top_level(inside):
                m = re.fullmatch(r"(\w+)\s*=\s*(.+)", part, re.DOTALL)
                if not m:
                    continue
                key, value = m.group(1), " ".join(m.group(2).split())
                if key == "env":
                    em = re.fullmatch(r'"([A-Za-z_][A-Za-z0-9_]*)"', value)
                    arg["env"] = em.group(1) if em else value
                elif key in ("default_value_t", "default_value"):
                    arg[key] = value
            out.append(arg)
    return out


def tf_env_values(ecs_tf: Path) -> dict[str, dict[str, str]]:
    """map name -> {env name: value expression} for the VALUE_MAPS in ecs.tf."""
    import hcl2  # type: ignore

    with ecs_tf.open(encoding="utf-8") as fh:
        doc = hcl2.load(fh)
    out: dict[str, dict[str, str]] = {}
    for block in doc.get("locals", []):
        for key, value in block.items():
            value = unwrap(value)
            if key in VALUE_MAPS and isinstance(value, dict):
                out[key] = {k: unwrap(v) for k, v in value.items() if not k.startswith("__")}
    return out


def tf_variable_defaults(tf_dir: Path) -> dict[str, tuple[bool, object, str]]:
    """variable -> (has a default, the default, file) over every *.tf in tf_dir."""
    import hcl2  # type: ignore

    out: dict[str, tuple[bool, object, str]] = {}
    for path in sorted(tf_dir.glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            doc = hcl2.load(fh)
        for block in doc.get("variable", []):
            for name, body in block.items():
                if "default" in body:
                    out[name] = (True, unwrap(body["default"]), path.name)
                else:
                    out[name] = (False, None, path.name)
    return out


def tf_value(value: object) -> object:
    """A Terraform default as a Python value: numbers as numbers, `${1024 * 16}` evaluated."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{(.*)\}", value.strip(), re.DOTALL)
        if m:
            return eval_arith(m.group(1))
        return int(value) if re.fullmatch(r"[+-]?\d+", value.strip()) else value
    return value


def same_value(a: object, b: object) -> bool:
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        return a == b or math.isclose(a, b, rel_tol=1e-12)
    return type(a) is type(b) and a == b


def fmt(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value} ({value:_})"
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def check_defaults(
    bins_src: Path, ecs_tf: Path, defaults_rs: Path, exceptions: dict[tuple[str, str], str]
) -> tuple[list[str], list[str]]:
    """(errors, report) of the one-source rules; each error starts with its rule."""
    errors: list[str] = []
    report: list[str] = []
    if not defaults_rs.is_file():
        return [f"defaults-rs: {defaults_rs} does not exist"], report
    consts, values, unevaluable = rust_defaults(defaults_rs)
    if not consts:
        return [f"defaults-rs: no `pub const NAME: T = VALUE;` in {defaults_rs}"], report
    rs = defaults_rs.as_posix()

    # clap: every constant is some arg's default; every arg of such a name takes it.
    used: dict[str, list[str]] = {}
    for arg in clap_args(bins_src):
        dvt, env = arg["default_value_t"], arg["env"]
        target = DEFAULTS_PATH.fullmatch(dvt).group(1) if dvt and DEFAULTS_PATH.fullmatch(dvt) else None
        if target is not None:
            used.setdefault(target, []).append(arg["where"])
            if target not in consts:
                errors.append(f"constant-name: {arg['where']}: default_value_t = {dvt}, but {rs} defines no {target}")
            elif env is not None and env != target:
                errors.append(
                    f"constant-name: {arg['where']}: env = \"{env}\" takes defaults::{target}; a constant is named "
                    f"after the variable that overrides it (defaults::{env})"
                )
        if env not in consts:
            continue
        if dvt is not None and target is None:
            try:
                literal = rust_value(dvt, {})
                what = f"the literal default_value_t = {dvt}"
                if not isinstance(literal, bool) and isinstance(literal, (int, float)) and env in values:
                    what += f" (defaults::{env} is {fmt(values[env])})"
            except Unevaluable:
                what = f"default_value_t = {dvt}"
            errors.append(f"literal-default: {arg['where']}: env = \"{env}\" has {what}, bypassing defaults::{env}")
        elif arg["default_value"] is not None:
            errors.append(
                f"literal-default: {arg['where']}: env = \"{env}\" has default_value = {arg['default_value']}, "
                f"bypassing defaults::{env} (use default_value_t = defaults::{env})"
            )
    for name in sorted(set(consts) - set(used)):
        errors.append(
            f"unread-constant: {name} ({rs}:{consts[name][2]}) is the default_value_t of no clap arg in {bins_src}"
        )

    # Terraform: a variable that sets NAME defaults to defaults::NAME.
    try:
        env_maps = tf_env_values(ecs_tf)
        variables = tf_variable_defaults(ecs_tf.parent)
    except Exception as exc:  # hcl2's parse errors have no common base class
        return errors + [f"tf-parse: {ecs_tf.parent}: {exc}"], report
    if not env_maps:
        errors.append(f"tf-parse: {ecs_tf} has none of the maps {', '.join(VALUE_MAPS)}")
    pairs: dict[tuple[str, str], list[str]] = {}
    for map_name in VALUE_MAPS:
        for env, expr in env_maps.get(map_name, {}).items():
            if env not in consts:
                continue
            m = TF_FROM_VAR.fullmatch(expr) if isinstance(expr, str) else None
            if m:
                pairs.setdefault((env, m.group(1) or m.group(2)), []).append(map_name)
            else:
                report.append(f"  {env} ({map_name}) = {expr!r}: not a variable, not compared")
    for (env, var), maps in sorted(pairs.items()):
        where = f"{env} <- var.{var} ({', '.join(maps)})"
        if var not in variables:
            errors.append(f"tf-default: {where}: no `variable \"{var}\"` in {ecs_tf.parent}/*.tf")
            continue
        has_default, raw, tf_file = variables[var]
        if not has_default:
            report.append(f"  {where}: var.{var} has no default (required), not compared")
            continue
        if env not in values:
            errors.append(f"tf-default: {where}: cannot evaluate defaults::{env} ({unevaluable.get(env)})")
            continue
        try:
            tf = tf_value(raw)
        except Unevaluable as exc:
            errors.append(f"tf-default: {where}: cannot evaluate var.{var}'s default in {tf_file}: {exc}")
            continue
        rust = values[env]
        reason = exceptions.get((env, var))
        if same_value(tf, rust):
            if reason is not None:
                errors.append(
                    f"exception: ({env!r}, {var!r}) is listed as a deliberate difference, but both are {fmt(rust)} now; "
                    "drop it from DEFAULT_EXCEPTIONS"
                )
            else:
                report.append(f"  {where}: {fmt(tf)} == defaults::{env}")
        elif reason is not None:
            report.append(f"  {where}: {fmt(tf)} != defaults::{env} = {fmt(rust)}, deliberately: {reason}")
        else:
            errors.append(
                f"tf-default: {where}: var.{var} defaults to {fmt(tf)} in {tf_file}, but defaults::{env} is "
                f"{fmt(rust)} ({rs}:{consts[env][2]}); make them equal, or name the difference and its reason "
                "in DEFAULT_EXCEPTIONS (scripts/check-env-contract.py)"
            )
    for env, var in sorted(set(exceptions) - set(pairs)):
        errors.append(
            f"exception: ({env!r}, {var!r}) is in DEFAULT_EXCEPTIONS, but ecs.tf does not set {env} from var.{var} "
            f"(or {rs} has no {env}); drop it"
        )
    for name in sorted(set(unevaluable) - {e for e, _ in pairs}):
        report.append(f"  {name}: {unevaluable[name]} (compared with nothing, so not needed)")
    report.insert(
        0,
        f"  {len(consts)} constants in {rs}, {len(set(used) & set(consts))} read by clap; "
        f"{len(pairs)} Terraform variable(s) compared",
    )
    return errors, report


# --- self-test ---------------------------------------------------------------------

SELF_TEST_BASE: dict[str, str] = {
    "core/src/defaults.rs": """\
//! Fixture.
/// Receives.
pub const MAX_RECEIVES: u32 = 5;
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const RELAY_INTERVAL_MS: u64 = 1_000;
pub const STALE_QUEUED_SECONDS: u64 = 15 * 60; // a comment
pub const SEND_FAILURE_RATE: f64 = 0.2;
pub const DB_POOL_MAX: u32 = 10;
pub const WINDOW: u64 = (MAX_RECEIVES as u64) * 2u64;
""",
    "bins/src/config.rs": """\
use gift_core::defaults;
pub struct Config {
    #[arg(long, env = "MAX_RECEIVES", default_value_t = defaults::MAX_RECEIVES, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_receives: u32,
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    #[arg(
        long,
        env = "RELAY_INTERVAL_MS",
        default_value_t = gift_core::defaults::RELAY_INTERVAL_MS,
    )]
    pub relay_interval_ms: u64,
    #[arg(long, env = "STALE_QUEUED_SECONDS", default_value_t = defaults::STALE_QUEUED_SECONDS)]
    pub stale_queued_seconds: u64,
    #[arg(long, env = "SEND_FAILURE_RATE", default_value_t = defaults::SEND_FAILURE_RATE, value_parser = parse_rate)]
    pub send_failure_rate: f64,
    #[arg(long, env = "DB_POOL_MAX", default_value_t = defaults::DB_POOL_MAX)]
    pub db_pool_max: u32,
    #[arg(long, env = "WINDOW", default_value_t = defaults::WINDOW)]
    pub window: u64,
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
}
""",
    "terraform/ecs.tf": """\
locals {
  app_common_environment = {
    LOG_LEVEL = var.log_level
  }
  api_only_environment = {
    MAX_BODY_BYTES = tostring(var.max_body_bytes)
    DB_POOL_MAX    = tostring(var.api_db_pool_max)
    PORT           = "8080"
  }
  worker_only_environment = {
    MAX_RECEIVES         = tostring(var.max_receives)
    RELAY_INTERVAL_MS    = tostring(var.relay_interval_ms)
    STALE_QUEUED_SECONDS = tostring(var.stale_queued_seconds)
    SEND_FAILURE_RATE    = tostring(var.send_failure_rate)
    DB_POOL_MAX          = tostring(var.worker_db_pool_max)
    WINDOW               = "10"
  }
}
""",
    "terraform/variables.tf": """\
variable "log_level" {
  type    = string
  default = "info"
}
variable "max_body_bytes" {
  type    = number
  default = 16384
}
variable "api_db_pool_max" {
  type    = number
  default = 10
}
variable "worker_db_pool_max" {
  type    = number
  default = 5
}
variable "max_receives" {
  type    = number
  default = 5
}
variable "relay_interval_ms" {
  type    = number
  default = 1000
}
variable "stale_queued_seconds" {
  type    = number
  default = 900
}
variable "send_failure_rate" {
  type    = number
  default = 0.2
}
""",
}
SELF_TEST_EXCEPTIONS = {("DB_POOL_MAX", "worker_db_pool_max"): "fixture: the worker's pool is sized apart"}

# Each fixture edits the consistent base: (file, old, new) replacements, and
# optionally other exceptions. The rule before the colon must be caught.
SELF_TEST_FIXTURES: dict[str, dict] = {
    "tf-default: a Terraform default that disagrees (max_receives 3, Rust 5)": {
        "edits": [("terraform/variables.tf", "default = 5\n}\nvariable \"relay", "default = 3\n}\nvariable \"relay")],
    },
    "tf-default: an arithmetic Rust default that disagrees (16 * 1000 vs 16384)": {
        "edits": [("core/src/defaults.rs", "16 * 1024", "16 * 1000")],
    },
    "tf-default: a `_`-separated Rust default that disagrees (1_500 vs 1000)": {
        "edits": [("core/src/defaults.rs", "1_000", "1_500")],
    },
    "tf-default: a float default that disagrees (0.25 vs 0.2)": {
        "edits": [("terraform/variables.tf", "default = 0.2", "default = 0.25")],
    },
    "tf-default: a difference no exception names": {
        "exceptions": {},
    },
    "tf-default: a compared constant the check cannot evaluate (a function call)": {
        "edits": [("core/src/defaults.rs", "MAX_RECEIVES: u32 = 5;", "MAX_RECEIVES: u32 = receives();")],
    },
    "exception: a listed difference that is gone": {
        "edits": [("terraform/variables.tf", "default = 5\n}\nvariable \"max_receives\"", "default = 10\n}\nvariable \"max_receives\"")],
    },
    "unread-constant: a constant nobody reads": {
        "edits": [("core/src/defaults.rs", "pub const DB_POOL_MAX", "pub const DB_ACQUIRE_TIMEOUT_MS: u64 = 2_000;\npub const DB_POOL_MAX")],
    },
    "literal-default: a clap literal default bypassing defaults.rs": {
        "edits": [("bins/src/config.rs", "default_value_t = defaults::DB_POOL_MAX", "default_value_t = 10")],
    },
    "literal-default: a clap string default bypassing defaults.rs": {
        "edits": [
            (
                "bins/src/config.rs",
                "    pub port: u16,\n",
                "    pub port: u16,\n    #[arg(long, env = \"MAX_RECEIVES\", default_value = \"5\")]\n    pub admin_receives: u32,\n",
            )
        ],
    },
    "constant-name: a constant read under another variable's name": {
        "edits": [("bins/src/config.rs", "default_value_t = defaults::DB_POOL_MAX", "default_value_t = defaults::MAX_RECEIVES")],
    },
}


def self_test() -> int:
    def run_fixture(edits, exceptions) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for rel, text in SELF_TEST_BASE.items():
                for f, old, new in edits:
                    if f == rel:
                        if old not in text:
                            raise SystemExit(f"self-test: fixture edit {old!r} does not apply to {rel}")
                        text = text.replace(old, new, 1)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text, encoding="utf-8")
            errors, _ = check_defaults(root / "bins" / "src", root / "terraform" / "ecs.tf", root / "core" / "src" / "defaults.rs", exceptions)
            return errors

    failed = 0
    base_errors = run_fixture([], SELF_TEST_EXCEPTIONS)
    if base_errors:
        failed += 1
        print("self-test: FAILED  the consistent fixture has errors:")
        for e in base_errors:
            print(f"    {e}")
    else:
        print("self-test: passed  the consistent fixture (16 * 1024, 1_000, 15 * 60, 0.2, a named exception, an unevaluated literal env)")
    for title, fx in SELF_TEST_FIXTURES.items():
        rule = title.split(":", 1)[0]
        errors = run_fixture(fx.get("edits", []), fx.get("exceptions", SELF_TEST_EXCEPTIONS))
        caught = [e for e in errors if e.startswith(rule + ":")]
        if caught:
            print(f"self-test: caught  {title}\n    {caught[0]}")
        else:
            failed += 1
            print(f"self-test: MISSED  {title}" + (f" (other errors: {errors})" if errors else ""))
    if failed:
        print(f"check-env-contract self-test: {failed} of {len(SELF_TEST_FIXTURES) + 1} fixture(s) wrong")
        return 1
    print(f"check-env-contract self-test: the consistent fixture passes, all {len(SELF_TEST_FIXTURES)} broken ones caught")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=Path(__file__).resolve().parent.parent, type=Path)
    ap.add_argument("--bins-src", type=Path)
    ap.add_argument("--ecs-tf", type=Path)
    ap.add_argument("--defaults-rs", type=Path)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()

    bins_src = args.bins_src or args.repo / "bins" / "src"
    ecs_tf = args.ecs_tf or args.repo / "terraform" / "ecs.tf"
    defaults_rs = args.defaults_rs or args.repo / "core" / "src" / "defaults.rs"

    if not bins_src.is_dir():
        print(f"check-env-contract: {bins_src} does not exist", file=sys.stderr)
        return 1

    reads = names_read(bins_src)
    read = reads.where
    if not read:
        print(
            f"check-env-contract: found no `env = \"NAME\"` in {bins_src}/**/*.rs "
            "(is bins/src/config.rs written yet?). Refusing to pass an empty contract.",
            file=sys.stderr,
        )
        return 1

    maps = names_set(ecs_tf)
    secrets = maps["app_secrets"]
    containers = {
        "api": maps["app_common_environment"] | maps["api_only_environment"] | secrets,
        "worker": maps["app_common_environment"] | maps["worker_only_environment"] | secrets,
    }
    migrate = maps["migrate_environment"] | maps["migrate_secrets"]
    set_any = containers["api"] | containers["worker"]
    per_binary = reads.per_binary()
    admin_reads = None
    # What gift-admin reads when the operator runs it with the worker's task
    # definition: every subcommand but migrate, name -> the subcommands.
    admin_ops: dict[str, list[str]] = {}
    if per_binary is not None and "gift-admin" in reads.binary_struct:
        admin_struct = reads.binary_struct["gift-admin"]
        admin_reads = reads.names_of_subcommand(admin_struct, "Migrate")
        admin_scope = "its migrate subcommand"
        if admin_reads is None:
            admin_reads, admin_scope = per_binary["gift-admin"], "the whole binary (no Migrate subcommand found)"
        others = [v for v in reads.subcommands(admin_struct) if v != "Migrate"]
        for variant in others or [None]:
            names = reads.names_of_struct(admin_struct)
            if variant is not None:
                names = reads.names_of_subcommand(admin_struct, variant) or names
            for name in names - set(LOCAL_ONLY):
                admin_ops.setdefault(name, []).append(kebab(variant) if variant else "gift-admin")

    errors: list[str] = []
    if per_binary is not None:
        mode = "per container (gift-api -> api, gift-worker -> worker)"
        shared = reads.direct.get("shared", set())
        for container, binary in (("api", "gift-api"), ("worker", "gift-worker")):
            wanted = per_binary[binary] - set(LOCAL_ONLY)
            have = containers[container]
            also_read = set(admin_ops) if container == "worker" else set()
            for name in sorted(wanted - have):
                errors.append(f"{name}: read by {binary} but not set in the {container} task definition")
            for name in sorted(have - per_binary[binary] - shared - also_read):
                errors.append(f"{name}: set in the {container} task definition but not read by {binary}")
        # The operator runs gift-admin (all but migrate) with the worker's task definition.
        for name in sorted(set(admin_ops) - containers["worker"]):
            errors.append(
                f"{name}: read by gift-admin {', '.join(sorted(set(admin_ops[name])))}, which runs with the worker's "
                "task definition, but not set there"
            )
        deployed = per_binary["gift-api"] | per_binary["gift-worker"] | per_binary.get("gift-admin", set())
        deployed |= set(admin_ops) | (admin_reads or set())
        for name in sorted(shared - set(LOCAL_ONLY) - set_any):
            errors.append(f"{name}: read by shared code ({', '.join(read[name])}) but set by neither task definition")
        local_only_binary = set(read) - deployed - shared
    else:
        mode = "union (could not attribute the clap structs to gift-api and gift-worker)"
        for name in sorted(set(read) - set(LOCAL_ONLY) - set_any - migrate):
            errors.append(f"{name}: read by the binaries ({', '.join(read[name])}) but set by no task definition")
        for name in sorted(set_any - set(read)):
            errors.append(f"{name}: set by the task definitions but read by no binary")
        local_only_binary = set()

    # The migrate task: the list it must set, and (once gift-admin exists) only
    # names gift-admin reads.
    for name in sorted(MIGRATE_NEEDS - migrate):
        errors.append(f"{name}: `gift-admin migrate` needs it but the migrate task definition does not set it")
    if admin_reads is not None:
        admin_shared = reads.direct.get("shared", set())
        for name in sorted(migrate - admin_reads - admin_shared):
            errors.append(f"{name}: set in the migrate task definition but not read by `gift-admin migrate`")
        for name in sorted(MIGRATE_NEEDS - admin_reads - admin_shared):
            errors.append(f"{name}: the migrate task sets it for `gift-admin migrate`, but gift-admin does not read it")
        defaulted = sorted(admin_reads - migrate - set(LOCAL_ONLY))
        migrate_mode = (
            f"against {admin_scope} of gift-admin ({len(admin_reads)} names; "
            f"left to their defaults: {', '.join(defaulted) or 'none'})"
        )
    elif per_binary is not None or "APP_DB_USER" not in read:
        migrate_mode = "gift-admin: not in bins/src yet; the migrate task is checked against MIGRATE_NEEDS only"
    else:
        migrate_mode = "gift-admin: its clap struct is not attributed; the migrate task is checked against MIGRATE_NEEDS only"
    for name in sorted(migrate & set(LOCAL_ONLY)):
        errors.append(f"{name}: must not be set in AWS ({LOCAL_ONLY[name]})")
    for name in sorted(maps["migrate_environment"] & maps["migrate_secrets"]):
        errors.append(f"{name}: set both as a plain variable and as a secret in the migrate task definition")

    for name in sorted(set_any & set(LOCAL_ONLY)):
        errors.append(f"{name}: must not be set in AWS ({LOCAL_ONLY[name]})")
    plain = maps["app_common_environment"] | maps["api_only_environment"] | maps["worker_only_environment"]
    for name in sorted(plain & secrets):
        errors.append(f"{name}: set both as a plain variable and as a secret")

    # What was compared.
    print(f"env contract: {bins_src} (read) vs local maps in {ecs_tf} (set)")
    print(f"  mode: {mode}")
    if per_binary is not None:
        for b in sorted(reads.binary_struct):
            print(f"  {b}: struct {reads.binary_struct[b]}, {len(per_binary.get(b, set()))} names")
        if admin_ops:
            print(f"  worker task definition, also for gift-admin (all but migrate): {len(admin_ops)} names")
    print(f"  migrate task ({len(migrate)} names): {migrate_mode}")
    all_names = set(read) | set_any
    width = max(len(n) for n in all_names)

    def read_by(name: str, binary: str) -> str:
        if per_binary is None:
            return "yes" if name in read else "NO"
        names = per_binary.get(binary, set())
        if binary == "gift-admin":  # its subcommands too
            names = names | set(admin_ops) | (admin_reads or set())
        return "yes" if name in names else "-"

    def mark(name: str, container: str) -> str:
        if name not in containers[container]:
            return "-"
        return "secret" if name in secrets else "env"

    if per_binary is not None:
        print(f"  {'NAME'.ljust(width)}  gift-api  api     gift-worker  worker  gift-admin  gift-local  note")
    else:
        print(f"  {'NAME'.ljust(width)}  read  api     worker  note")
    for name in sorted(all_names | migrate):
        if name in LOCAL_ONLY and name not in set_any:
            note = f"local-only: {LOCAL_ONLY[name]}"
        elif name in migrate:
            note = "migrate task" + ("" if name in set_any else " only")
        elif name in admin_ops and name in containers["worker"] and name not in per_binary.get("gift-worker", set()):
            note = "worker task definition, for gift-admin only (gift-worker does not read it)"
        elif name in local_only_binary:
            note = "gift-local only (never deployed)"
        elif name not in read:
            note = "NOT READ"
        else:
            note = ""
        if per_binary is not None:
            print(
                f"  {name.ljust(width)}  {read_by(name, 'gift-api'):<8}  {mark(name, 'api'):<6}  "
                f"{read_by(name, 'gift-worker'):<11}  {mark(name, 'worker'):<6}  {read_by(name, 'gift-admin'):<10}  "
                f"{read_by(name, 'gift-local'):<10}  {note}"
            )
        else:
            print(f"  {name.ljust(width)}  {read_by(name, ''):<4}  {mark(name, 'api'):<6}  {mark(name, 'worker'):<6}  {note}")

    # One source of defaults: core/src/defaults.rs, clap, variables.tf.
    default_errors, default_report = check_defaults(bins_src, ecs_tf, defaults_rs, DEFAULT_EXCEPTIONS)
    print(f"defaults: {defaults_rs} vs clap's default_value_t in {bins_src} and the variables in {ecs_tf.parent}/*.tf")
    for line in default_report:
        print(line)
    errors += default_errors

    if errors:
        print(f"env contract: {len(errors)} problem(s):")
        for e in errors:
            print(f"  ERROR {e}")
        return 1
    print(
        f"env contract: OK ({len(containers['api'])} names set for api, {len(containers['worker'])} for worker, "
        f"{len(migrate)} for migrate; {len(read)} names read in bins/src)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
