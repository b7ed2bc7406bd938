#!/usr/bin/env python3
"""Compare the environment variables the binaries read with the ones the ECS
task definitions set, in both directions.

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

Usage: check-env-contract.py [--repo DIR] [--bins-src DIR] [--ecs-tf FILE]
Exit 0 when the contract holds, 1 otherwise. Needs the `hcl2` module
(bc-python-hcl2, installed with checkov in scripts/check-infra's venv).
"""

from __future__ import annotations

import argparse
import re
import sys
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=Path(__file__).resolve().parent.parent, type=Path)
    ap.add_argument("--bins-src", type=Path)
    ap.add_argument("--ecs-tf", type=Path)
    args = ap.parse_args()

    bins_src = args.bins_src or args.repo / "bins" / "src"
    ecs_tf = args.ecs_tf or args.repo / "terraform" / "ecs.tf"

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
