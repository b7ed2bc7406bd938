#!/usr/bin/env python3
"""Offline checks of AWS limits that `terraform validate` does not know and that
otherwise only `terraform apply` finds out, read from terraform/*.tf:

  policy-size   Every aws_iam_policy whose document takes its actions from a
                datadog_integration_aws_iam_permissions* data source (whole, or
                in chunklist(..., N) chunks) fits AWS's 6,144 characters for a
                managed policy (white space not counted), with GROWTH_MARGIN to
                spare: the sizes come from a recorded copy of Datadog's lists
                (scripts/data/datadog-aws-iam-permissions.json), and the live
                lists only grow.
  name-length   Every length-limited name (ALB and target group 32, IAM role
                64, RDS identifier 63, SQS queue 80, ...) at its longest: each
                var.X it interpolates at the longest its validation regex
                allows, each local.Y resolved. A name that cannot be bounded
                fails where the limit is 128 or less.
  pg-family     Every aws_db_parameter_group's family is derived from
                var.db_engine_version (no hard-coded postgresNN). With a
                terraform binary the derivation is also evaluated (terraform
                console, variables and locals only) for sample versions.
  cbd-name      No resource with create_before_destroy has a fixed `name`: the
                new one would collide with the old (use name_prefix).

Usage: check-tf-limits.py [--terraform-dir DIR] [--permissions FILE] [--self-test]
--self-test runs the checks on small fixtures that break each rule and fails
unless every one of them is caught. Exit 0 when everything holds, 1 otherwise.
Needs the `hcl2` module (bc-python-hcl2, in scripts/check-infra's venv).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import re._parser as sre_parse  # Python 3.11+
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore

MANAGED_POLICY_LIMIT = 6144
# The recorded lists are from 2025; Datadog adds actions as it adds services.
GROWTH_MARGIN = 0.20

# The length limits AWS documents for the names this configuration sets, per
# resource type and attribute (at any depth of the resource's blocks).
NAME_LIMITS: dict[str, dict[str, int]] = {
    "aws_lb": {"name": 32, "name_prefix": 6},
    "aws_lb_target_group": {"name": 32, "name_prefix": 6},
    "aws_iam_role": {"name": 64, "name_prefix": 38},
    "aws_iam_policy": {"name": 128, "name_prefix": 96},
    "aws_iam_role_policy": {"name": 128},
    "aws_db_instance": {"identifier": 63, "final_snapshot_identifier": 255},
    "aws_db_parameter_group": {"name": 255, "name_prefix": 229},
    "aws_db_subnet_group": {"name": 255},
    "aws_sqs_queue": {"name": 80},
    "aws_security_group": {"name": 255, "name_prefix": 229},
    "aws_ecs_cluster": {"name": 255},
    "aws_ecs_service": {"name": 255},
    "aws_ecs_task_definition": {"family": 255},
    "aws_ecr_repository": {"name": 256},
    "aws_cloudwatch_log_group": {"name": 512},
    "aws_secretsmanager_secret": {"name": 512},
    "aws_kms_alias": {"name": 256},
    "aws_wafv2_web_acl": {"name": 128, "metric_name": 128},
    "aws_appautoscaling_policy": {"name": 255},
}
TIGHT = 128  # at or below this limit an unbounded name is an error

PERMISSION_SOURCES = (
    "datadog_integration_aws_iam_permissions_resource_collection",
    "datadog_integration_aws_iam_permissions_standard",
    "datadog_integration_aws_iam_permissions",
)
FAMILY_SAMPLES = ("13", "15", "16.4", "17")


def unwrap(value):
    # bc-python-hcl2 wraps attribute values in one-element lists.
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def attr(body: dict, name: str):
    """An attribute's value: bc-python-hcl2 wraps each in exactly one list."""
    value = body.get(name)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def hcl_unescape(text: str) -> str:
    return re.sub(r'\\(["\\])', r"\1", text)


def interpolation(expr) -> str | None:
    """The expression of a string that is one whole ${...}, else None."""
    if isinstance(expr, str) and expr.startswith("${") and expr.endswith("}") and template_parts(expr) == [("expr", expr[2:-1])]:
        return expr[2:-1]
    return None


def template_parts(text: str) -> list[tuple[str, str]]:
    """Split "a${b}c" into [("lit","a"), ("expr","b"), ("lit","c")], braces and quotes balanced."""
    parts: list[tuple[str, str]] = []
    i, lit = 0, ""
    while i < len(text):
        if text.startswith("${", i):
            if lit:
                parts.append(("lit", lit))
                lit = ""
            depth, j, quote = 1, i + 2, False
            while j < len(text) and depth:
                c = text[j]
                if quote:
                    if c == "\\":
                        j += 1
                    elif c == '"':
                        quote = False
                elif c == '"':
                    quote = True
                elif c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                j += 1
            parts.append(("expr", text[i + 2 : j - 1]))
            i = j
        else:
            lit += text[i]
            i += 1
    if lit:
        parts.append(("lit", lit))
    return parts


class Config:
    def __init__(self, tf_dir: Path) -> None:
        try:
            import hcl2  # type: ignore
        except ImportError:
            sys.exit("check-tf-limits: the hcl2 module is missing; run scripts/check-infra (it installs it with checkov)")
        self.dir = tf_dir
        self.variables: dict[str, dict] = {}
        self.locals: dict[str, object] = {}
        self.resources: list[tuple[str, str, dict, str]] = []  # type, name, body, file
        self.data: dict[tuple[str, str], dict] = {}
        files = sorted(tf_dir.glob("*.tf"))
        if not files:
            sys.exit(f"check-tf-limits: no *.tf in {tf_dir}")
        for path in files:
            with path.open(encoding="utf-8") as fh:
                doc = hcl2.load(fh)
            for block in doc.get("variable", []):
                for name, body in block.items():
                    self.variables[name] = body
            for block in doc.get("locals", []):
                for name, value in block.items():
                    if not name.startswith("__"):
                        self.locals[name] = unwrap(value)
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for rname, body in named.items():
                        self.resources.append((rtype, rname, body, path.name))
            for block in doc.get("data", []):
                for dtype, named in block.items():
                    for dname, body in named.items():
                        self.data[(dtype, dname)] = body

    # --- variables ---------------------------------------------------------------

    def var_regex(self, name: str) -> str | None:
        body = self.variables.get(name)
        if body is None:
            return None
        for validation in body.get("validation", []):
            cond = unwrap(validation.get("condition"))
            if not isinstance(cond, str):
                continue
            m = re.search(r'regex\(\s*"((?:[^"\\]|\\.)*)"\s*,\s*var\.' + re.escape(name) + r"\s*\)", cond)
            if m:
                return hcl_unescape(m.group(1))
        return None

    def var_max_len(self, name: str) -> int | None:
        pattern = self.var_regex(name)
        if pattern is None:
            return None
        low, high = sre_parse.parse(pattern).getwidth()
        return None if high >= 2**16 else high

    def depends_on_var(self, expr: str, var: str, seen: frozenset = frozenset()) -> bool:
        if re.search(r"\bvar\." + re.escape(var) + r"\b", expr):
            return True
        for local in re.findall(r"\blocal\.(\w+)", expr):
            if local in seen or local not in self.locals:
                continue
            value = self.locals[local]
            text = json.dumps(value) if not isinstance(value, str) else value
            if self.depends_on_var(text, var, seen | {local}):
                return True
        return False

    # --- string bounds -------------------------------------------------------------

    def max_len(self, value, ctx: dict, seen: frozenset = frozenset()) -> tuple[int | None, str]:
        """Longest length of a string expression, or (None, why not)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return len(str(value)), ""
        if not isinstance(value, str):
            return None, f"not a string: {value!r}"
        total = 0
        for kind, part in template_parts(value):
            if kind == "lit":
                total += len(hcl_unescape(part))
                continue
            n, why = self.expr_max_len(part.strip(), ctx, seen)
            if n is None:
                return None, why
            total += n
        return total, ""

    def expr_max_len(self, expr: str, ctx: dict, seen: frozenset) -> tuple[int | None, str]:
        m = re.fullmatch(r"var\.(\w+)", expr)
        if m:
            n = self.var_max_len(m.group(1))
            return (n, "") if n is not None else (None, f"var.{m.group(1)} has no length-bounding validation regex")
        m = re.fullmatch(r"local\.(\w+)", expr)
        if m:
            name = m.group(1)
            if name in seen or name not in self.locals:
                return None, f"local.{name} cannot be resolved"
            return self.max_len(self.locals[name], ctx, seen | {name})
        m = re.fullmatch(r"local\.(\w+)\[(\"?)(\w+)\2\]", expr)
        if m and isinstance(self.locals.get(m.group(1)), dict):
            item = self.locals[m.group(1)].get(m.group(3))
            if item is not None:
                return self.max_len(unwrap(item), ctx, seen)
        m = re.fullmatch(r"each\.(key|value)(?:\.(\w+))?", expr)
        if m and ctx.get("for_each") is not None:
            items = ctx["for_each"]
            values = list(items.keys()) if m.group(1) == "key" else [unwrap(v) for v in items.values()]
            if m.group(2):
                if m.group(1) == "key" or not all(isinstance(v, dict) and m.group(2) in v for v in values):
                    return None, f"${{{expr}}} cannot be resolved"
                values = [v[m.group(2)] for v in values]
            best = 0
            for v in values:
                n, why = self.max_len(unwrap(v), ctx, seen)
                if n is None:
                    return None, why
                best = max(best, n)
            return best, ""
        if expr == "count.index":
            return 2, ""
        m = re.fullmatch(r"lower\((.*)\)", expr)
        if m:
            return self.expr_max_len(m.group(1).strip(), ctx, seen)
        return None, f"${{{expr}}} cannot be bounded offline"

    def for_each_items(self, body: dict) -> dict | None:
        fe = unwrap(body.get("for_each"))
        if isinstance(fe, dict):
            return {k: v for k, v in fe.items() if not k.startswith("__")}
        inner = interpolation(fe)
        if inner:
            m = re.fullmatch(r"local\.(\w+)", inner.strip())
            if m and isinstance(self.locals.get(m.group(1)), dict):
                return {k: v for k, v in self.locals[m.group(1)].items() if not k.startswith("__")}
            m = re.fullmatch(r'toset\(\[(.*)\]\)', inner.strip())
            if m:
                return {k: k for k in re.findall(r'"([^"]*)"', m.group(1))}
        return None


def walk_attrs(body, names: set[str], path: str = ""):
    """(dotted path, value) of every attribute in `names`, at any block depth."""
    if isinstance(body, list):
        for item in body:
            yield from walk_attrs(item, names, path)
    elif isinstance(body, dict):
        for key, value in body.items():
            if key.startswith("__"):
                continue
            if key in names and not isinstance(unwrap(value), (dict, list)):
                yield (f"{path}{key}", unwrap(value))
            elif isinstance(value, (dict, list)):
                yield from walk_attrs(value, names, f"{path}{key}.")


# --- policy-size -------------------------------------------------------------------


def policy_chunks(cfg: Config, lists: dict[str, list[str]], actions_expr) -> tuple[list[list[str]] | None, str]:
    """The action lists one policy document can receive, or (None, why)."""
    if isinstance(actions_expr, list):
        flat = [unwrap(a) for a in actions_expr]
        if all(isinstance(a, str) and "${" not in a for a in flat):
            return [flat], "literal"
        return None, "a list with interpolations"
    inner = interpolation(actions_expr)
    if inner is None:
        return None, f"an expression this check does not read: {actions_expr!r}"
    inner = inner.strip()
    source = next((s for s in PERMISSION_SOURCES if re.search(r"\bdata\." + s + r"\.\w+(\[[^\]]*\])?\.iam_permissions\b", inner)), None)
    if source is None:
        return None, "no datadog_integration_aws_iam_permissions* source"
    actions = lists.get(source)
    if actions is None:
        return None, f"no recorded list for {source}"
    if re.fullmatch(r"data\." + source + r"\.\w+(\[[^\]]*\])?\.iam_permissions", inner):
        return [actions], source
    m = re.fullmatch(r"chunklist\(\s*data\." + source + r"\.\w+(\[[^\]]*\])?\.iam_permissions\s*,\s*(\d+)\s*\)\s*\[[^\]]+\]", inner)
    if m:
        size = int(m.group(2))
        return [actions[i : i + size] for i in range(0, len(actions), size)], f"chunklist({source}, {size})"
    return None, f"{source} through an expression this check does not read: {inner}"


def policy_json(statements: list[dict]) -> str:
    """What aws_iam_policy_document renders, without white space (how AWS counts)."""
    out = []
    for st in statements:
        actions = sorted(set(st["actions"]))
        out.append(
            {
                **({"Sid": st["sid"]} if st.get("sid") else {}),
                "Effect": st.get("effect", "Allow"),
                "Action": actions[0] if len(actions) == 1 else actions,
                "Resource": st["resources"][0] if len(st["resources"]) == 1 else st["resources"],
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": out}, separators=(",", ":"))


def check_policy_size(cfg: Config, lists: dict[str, list[str]], errors: list[str], report: list[str]) -> None:
    allowed = int(MANAGED_POLICY_LIMIT * (1 - GROWTH_MARGIN))
    for rtype, rname, body, fname in cfg.resources:
        if rtype != "aws_iam_policy":
            continue
        policy = unwrap(body.get("policy"))
        inner = interpolation(policy)
        m = re.fullmatch(r"data\.aws_iam_policy_document\.(\w+)(\[[^\]]*\])?\.json", inner.strip()) if inner else None
        if not m:
            report.append(f"  {rtype}.{rname} ({fname}): policy is not an aws_iam_policy_document; not computed")
            continue
        doc = cfg.data.get(("aws_iam_policy_document", m.group(1)))
        if doc is None:
            errors.append(f"{rtype}.{rname} ({fname}): data.aws_iam_policy_document.{m.group(1)} not found")
            continue
        statements = doc.get("statement", [])
        if not isinstance(statements, list):
            statements = [statements]
        variants: list[list[dict]] = [[]]
        fed, unreadable = False, []
        for st in statements:
            chunks, how = policy_chunks(cfg, lists, attr(st, "actions"))
            resources = attr(st, "resources")
            resources = list(resources) if isinstance(resources, list) else [resources]
            if chunks is None:
                unreadable.append(how)
                continue
            fed = fed or how != "literal"
            sid = unwrap(st.get("sid"))
            variants = [v + [{"sid": sid, "actions": c, "resources": resources}] for v in variants for c in chunks]
        if not fed:
            report.append(f"  {rtype}.{rname} ({fname}): no Datadog permission list; not computed")
            continue
        if unreadable:
            errors.append(f"{rtype}.{rname} ({fname}): takes Datadog's permissions but also {'; '.join(unreadable)}: cannot size it")
            continue
        for i, stmts in enumerate(variants):
            size = len(policy_json(stmts))
            n = sum(len(set(s["actions"])) for s in stmts)
            label = f"{rtype}.{rname}" + (f" chunk {i + 1}/{len(variants)}" if len(variants) > 1 else "")
            line = f"{label} ({fname}): {n} actions, {size} characters (limit {MANAGED_POLICY_LIMIT}; with the {int(GROWTH_MARGIN * 100)}% growth margin {allowed})"
            if size > MANAGED_POLICY_LIMIT:
                errors.append(f"{line}: over AWS's managed-policy limit, `terraform apply` fails at CreatePolicy")
            elif size > allowed:
                errors.append(f"{line}: inside the limit but without the margin the live list needs")
            else:
                report.append(f"  {line}: ok")


# --- name-length -------------------------------------------------------------------


def check_name_lengths(cfg: Config, errors: list[str], report: list[str]) -> None:
    for var in ("project", "environment"):
        n = cfg.var_max_len(var)
        report.append(f"  var.{var}: at most {n if n is not None else 'unbounded'} characters (its validation regex)")
    for rtype, rname, body, fname in cfg.resources:
        limits = NAME_LIMITS.get(rtype)
        if not limits:
            continue
        ctx = {"for_each": cfg.for_each_items(body)}
        for path, value in walk_attrs(body, set(limits)):
            limit = limits[path.rsplit(".", 1)[-1]]
            n, why = cfg.max_len(value, ctx)
            label = f"{rtype}.{rname}.{path} ({fname}) = {value!r}"
            if n is None:
                if limit <= TIGHT:
                    errors.append(f"{label}: cannot be bounded ({why}); AWS allows {limit}")
                continue
            if n > limit:
                errors.append(f"{label}: up to {n} characters under the variables' own rules; AWS allows {limit}")
            elif limit <= 64:
                report.append(f"  {rtype}.{rname}.{path}: up to {n} of {limit}")


# --- pg-family and cbd-name ----------------------------------------------------------


def console_eval(cfg: Config, expr: str, var_values: dict[str, str]) -> tuple[str | None, str]:
    """Evaluate `expr` with terraform console in a scratch module of the variables and locals it needs."""
    terraform = shutil.which("terraform") or ("/usr/local/bin/terraform" if os.access("/usr/local/bin/terraform", os.X_OK) else None)
    if terraform is None:
        return None, "no terraform binary"
    needed, todo = {}, re.findall(r"\blocal\.(\w+)", expr)
    while todo:
        name = todo.pop()
        if name in needed or name not in cfg.locals or not isinstance(cfg.locals[name], str):
            continue
        needed[name] = cfg.locals[name]
        todo += re.findall(r"\blocal\.(\w+)", needed[name])
    text = json.dumps(list(needed.values())) + expr
    lines = []
    for var in sorted(set(re.findall(r"\bvar\.(\w+)", text))):
        pattern = cfg.var_regex(var)
        lines.append(f'variable "{var}" {{\n  type = string\n')
        if pattern is not None:
            lines.append(f'  validation {{\n    condition     = can(regex({json.dumps(pattern)}, var.{var}))\n    error_message = "invalid"\n  }}\n')
        lines.append("}\n")
    lines.append("locals {\n")
    for name, value in needed.items():
        lines.append(f'  {name} = "{value}"\n')
    lines.append("}\n")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "main.tf").write_text("".join(lines), encoding="utf-8")
        args = [terraform, "console"] + [f"-var={k}={v}" for k, v in var_values.items()]
        env = {**os.environ, "TF_CLI_CONFIG_FILE": os.environ.get("TF_CLI_CONFIG_FILE", "/dev/null"), "TF_IN_AUTOMATION": "1"}
        proc = subprocess.run(args, input=f'"{expr}"\n', cwd=tmp, capture_output=True, text=True, env=env, timeout=120)
    if proc.returncode != 0:
        return None, (proc.stderr.strip().splitlines() or ["terraform console failed"])[-1]
    return json.loads(proc.stdout.strip()), ""


def check_family(cfg: Config, errors: list[str], report: list[str], evaluate: bool) -> None:
    for rtype, rname, body, fname in cfg.resources:
        if rtype != "aws_db_parameter_group":
            continue
        family = unwrap(body.get("family"))
        label = f"{rtype}.{rname}.family ({fname}) = {family!r}"
        if not isinstance(family, str) or "${" not in family:
            errors.append(f"{label}: hard-coded, while the engine version is var.db_engine_version; derive it from the version's major")
            continue
        if not cfg.depends_on_var(family, "db_engine_version"):
            errors.append(f"{label}: does not follow var.db_engine_version")
            continue
        if not evaluate:
            report.append(f"  {label}: follows var.db_engine_version (not evaluated)")
            continue
        results = []
        for version in FAMILY_SAMPLES:
            value, why = console_eval(cfg, family, {"db_engine_version": version})
            if value is None:
                report.append(f"  {label}: follows var.db_engine_version (not evaluated: {why})")
                break
            want = f"postgres{version.split('.')[0]}"
            results.append(f"{version} -> {value}")
            if value != want:
                errors.append(f"{label}: db_engine_version {version} gives {value!r}, RDS's family is {want!r}")
        else:
            report.append(f"  {rtype}.{rname}.family: {', '.join(results)}")


def check_cbd_names(cfg: Config, errors: list[str], report: list[str]) -> None:
    count = 0
    for rtype, rname, body, fname in cfg.resources:
        lifecycle = unwrap(body.get("lifecycle"))
        if not isinstance(lifecycle, dict) or unwrap(lifecycle.get("create_before_destroy")) is not True:
            continue
        count += 1
        if "name" in body:
            errors.append(
                f"{rtype}.{rname} ({fname}): create_before_destroy with a fixed name {unwrap(body['name'])!r}: "
                "the replacement is created while the old one still holds the name; use name_prefix"
            )
    report.append(f"  {count} resource(s) with create_before_destroy checked")


# --- driver --------------------------------------------------------------------------


def run(tf_dir: Path, lists: dict[str, list[str]], evaluate: bool = True, quiet: bool = False) -> list[str]:
    cfg = Config(tf_dir)
    errors: list[str] = []
    for title, check in (
        ("policy-size", lambda e, r: check_policy_size(cfg, lists, e, r)),
        ("name-length", lambda e, r: check_name_lengths(cfg, e, r)),
        ("pg-family", lambda e, r: check_family(cfg, e, r, evaluate)),
        ("cbd-name", lambda e, r: check_cbd_names(cfg, e, r)),
    ):
        errs: list[str] = []
        report: list[str] = []
        check(errs, report)
        if not quiet:
            print(f"{title}: {'ok' if not errs else f'{len(errs)} problem(s)'}")
            for line in report:
                print(line)
            for e in errs:
                print(f"  ERROR {e}")
        errors += [f"{title}: {e}" for e in errs]
    return errors


# Each fixture breaks one rule the way the configuration once did; the self-test
# fails unless the check catches every one.
FIXTURES: dict[str, str] = {
    "policy-size: the full permission list in one managed policy": """
data "datadog_integration_aws_iam_permissions" "main" {}
data "aws_iam_policy_document" "dd" {
  statement {
    actions   = data.datadog_integration_aws_iam_permissions.main.iam_permissions
    resources = ["*"]
  }
}
resource "aws_iam_policy" "dd" {
  name   = "dd"
  policy = data.aws_iam_policy_document.dd.json
}
""",
    "policy-size: the full list in chunks of 230, each over the limit": """
data "datadog_integration_aws_iam_permissions" "main" {}
data "aws_iam_policy_document" "dd" {
  count = 3
  statement {
    actions   = chunklist(data.datadog_integration_aws_iam_permissions.main.iam_permissions, 230)[count.index]
    resources = ["*"]
  }
}
resource "aws_iam_policy" "dd" {
  count  = 3
  name   = "dd-${count.index}"
  policy = data.aws_iam_policy_document.dd[count.index].json
}
""",
    "name-length: ALB and target group names of 33 characters": """
variable "project" {
  type = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.project))
    error_message = "x"
  }
}
variable "environment" {
  type = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.environment))
    error_message = "x"
  }
}
locals {
  name = "${var.project}-${var.environment}"
}
resource "aws_lb" "main" {
  name = "${local.name}-alb"
}
resource "aws_lb_target_group" "api" {
  name = "${local.name}-api"
}
""",
    "pg-family: a hard-coded family": """
variable "db_engine_version" {
  type    = string
  default = "15"
}
resource "aws_db_parameter_group" "main" {
  name_prefix = "pg-"
  family      = "postgres15"
}
""",
    "pg-family: a family that evaluates wrong": """
variable "db_engine_version" {
  type    = string
  default = "15"
}
resource "aws_db_parameter_group" "main" {
  name_prefix = "pg-"
  family      = "postgres${var.db_engine_version}"
}
""",
    "cbd-name: create_before_destroy with a fixed name": """
resource "aws_db_parameter_group" "main" {
  name   = "fixed"
  family = "postgres${split(".", var.db_engine_version)[0]}"
  lifecycle {
    create_before_destroy = true
  }
}
variable "db_engine_version" {
  type = string
}
""",
}


def self_test(lists: dict[str, list[str]]) -> int:
    missed = []
    for title, text in FIXTURES.items():
        rule = title.split(":", 1)[0]
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "fixture.tf").write_text(text, encoding="utf-8")
            errors = run(Path(tmp), lists, evaluate=True, quiet=True)
        caught = [e for e in errors if e.startswith(rule + ":")]
        if caught:
            print(f"self-test: caught  {title}\n    {caught[0]}")
        elif rule == "pg-family" and "evaluates wrong" in title and not (shutil.which("terraform") or os.access("/usr/local/bin/terraform", os.X_OK)):
            print(f"self-test: skipped {title} (no terraform binary to evaluate it)")
        else:
            missed.append(title)
            print(f"self-test: MISSED  {title}")
    if missed:
        print(f"check-tf-limits self-test: {len(missed)} fixture(s) not caught")
        return 1
    print(f"check-tf-limits self-test: all {len(FIXTURES)} fixtures caught")
    return 0


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terraform-dir", type=Path, default=root / "terraform")
    ap.add_argument("--permissions", type=Path, default=root / "scripts" / "data" / "datadog-aws-iam-permissions.json")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    lists = json.loads(args.permissions.read_text(encoding="utf-8"))["lists"]
    if args.self_test:
        return self_test(lists)
    errors = run(args.terraform_dir, lists)
    if errors:
        print(f"check-tf-limits: {len(errors)} problem(s) in {args.terraform_dir}")
        return 1
    print(f"check-tf-limits: OK ({args.terraform_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
