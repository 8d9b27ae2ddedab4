"""Experiments as YAML files: the shipped catalogue, users' own files, and their schema.

A file is an :class:`~harness.run.model.Experiment` whose values may be **expressions** of
its parameters, plus what makes it a family of experiments::

    schema_version: 1
    name: api-server-kill
    summary: one line for `ha-bench list`
    params:                      # besides the common ones (api_servers, schedulers, ...)
      all_replicas: {default: false, help: kill every api-server in a row}
    vars:                        # derived values, in order
      target: "{{ 'api-server/all' if all_replicas else 'api-server-0' }}"
    description: "SIGKILL {{ target }} of {{ api_servers }} api-server(s)"
    fault: {op: kill, target: "{{ target }}"}
    hypotheses:
      - when: "api_servers == 1 or all_replicas"   # list items may carry a condition
        metric: downtime_s
        op: ">"
        value: 0
    cases:                       # what `pytest experiments/` runs
      - {id: api-server-kill-1, params: {api_servers: 1}, profiles: [smoke, full]}

A string that is exactly ``{{ expr }}`` becomes the expression's value (a number stays a
number); other strings with ``{{ }}`` are rendered as text (Jinja2, sandboxed, unknown
names are errors). Every experiment takes the :data:`COMMON` parameters; they set the
topology's replica counts and the Locust users unless the file sets those itself.
Expressions also see ``platform`` (``local`` or ``kubernetes``), for expected values that
the platform decides (probe periods, kube-proxy).
"""

from __future__ import annotations

import functools
import json
import operator
import re
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import jinja2.meta
import jinja2.sandbox
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from harness.check.hypothesis import Hypothesis
from harness.core.errors import HarnessError
from harness.core.topology import Topology
from harness.run.model import Experiment, Fault

FILE_SCHEMA_VERSION = 1
PLATFORMS = ("local", "kubernetes")
EXPR = r"^\s*\{\{.*\}\}\s*$"
Expr = Annotated[str, StringConstraints(pattern=EXPR)]
_FULL = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)
_ENV = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined)


class Param(BaseModel):
    """A parameter: its default decides its type (bool, int, float or str)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: bool | int | float | str
    help: str = ""
    choices: tuple[bool | int | float | str, ...] | None = None


class Case(BaseModel):
    """One case of the experiment suite: an id (results land under it) and parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    params: dict[str, Any] = Field(default_factory=dict)
    profiles: tuple[Literal["smoke", "full"], ...] = ("full",)


COMMON: dict[str, Param] = {
    "api_servers": Param(default=2, help="api-server replicas behind HAProxy"),
    "schedulers": Param(default=2, help="scheduler replicas (active-active)"),
    "workers": Param(default=2, help="Celery worker replicas"),
    "load_users": Param(default=10, help="Locust users loading the api-servers during the run"),
}


def _loose(annotation: Any) -> Any:
    """``annotation`` or an expression string (for the file schema); a nested model's own
    fields may be expressions too."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) in _UNIONS else ()
    if args:
        return functools.reduce(operator.or_, [_loose_arg(a) for a in args]) | Expr
    return _loose_arg(annotation) | Expr


_UNIONS = (typing.Union, types.UnionType)


def _loose_arg(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _nested(annotation)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis \
            and isinstance(args[0], type) and issubclass(args[0], BaseModel):  # fmt: skip
        return tuple[_nested(args[0]), ...]  # a sequence of models (a schedule's steps)
    return annotation


@functools.cache
def _nested(model: type[BaseModel]) -> type[BaseModel]:
    return _file_model(model, f"{model.__name__}File")


def _file_model(model: type[BaseModel], name: str, *, skip=(), extra: dict | None = None):
    fields: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        if key in skip:
            continue
        default = ... if info.is_required() else info.get_default(call_default_factory=True)
        fields[key] = (_loose(info.annotation), Field(default, description=info.description))
    fields.update(extra or {})
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


WHEN = (str | bool | None, Field(None, description="include this item only if it holds"))
FaultFile = _nested(Fault)
HypothesisFile = _file_model(Hypothesis, "HypothesisFile", extra={"when": WHEN})
ExperimentFile = _file_model(
    Experiment,
    "ExperimentFile",
    skip=("params", "fault", "hypotheses", "name"),
    extra={
        "schema_version": (Literal[1], Field(description="experiment file format version")),
        "name": (str, Field(pattern=r"^[a-z][a-z0-9-]*$")),
        "summary": (str, Field("", description="one line for `ha-bench list`")),
        "params": (dict[str, Param], Field(default_factory=dict)),
        "vars": (dict[str, Any], Field(default_factory=dict, description="derived values")),
        "cases": (list[Case], Field(default_factory=list, description="suite cases")),
        "fault": (FaultFile | None, None),
        "hypotheses": (list[HypothesisFile], Field(default_factory=list)),
    },
)
META = ("schema_version", "summary", "params", "vars", "cases")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an experiment file (``ha-bench schema``)."""
    schema = ExperimentFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "airflow-ha-bench experiment file"
    return schema


_UNION_TAG = re.compile(r"^(float|int|bool|str|none|constrained-str|function-\S+|"
                        r"(literal|tuple|dict|list)\[.*\]|\w+File)$")  # fmt: skip


def _path(loc: tuple) -> str:
    """``loc`` without pydantic's union-member tags (``float``, ``constrained-str`` ...)."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and _UNION_TAG.match(p))]
    return ".".join(parts) or "(top level)"


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per field: ``path: message``; "or an expression" where one was allowed."""
    messages: dict[str, str] = {}
    expression_allowed = set()
    for e in exc.errors():
        path = _path(e["loc"])
        if e["type"] == "string_pattern_mismatch" and e.get("ctx", {}).get("pattern") == EXPR:
            expression_allowed.add(path)
            continue
        messages.setdefault(path, e["msg"])
    for path in expression_allowed - set(messages):
        messages[path] = "not a valid value or expression"
    return [
        f"{prefix}{path}: {msg}" + (" (or a '{{ expression }}')" if path in expression_allowed
                                   else "")
        for path, msg in messages.items()
    ]  # fmt: skip


class ExperimentSpec:
    """A validated experiment file; :meth:`build` applies parameters."""

    def __init__(self, raw: dict[str, Any], source: str) -> None:
        self.source = source
        self.raw = raw
        self.file = ExperimentFile.model_validate(raw)  # raises ValidationError
        self.name: str = self.file.name
        self.summary: str = self.file.summary
        self.params: dict[str, Param] = {**COMMON, **self.file.params}
        self.cases: list[Case] = list(self.file.cases)

    def values(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Parameter values: defaults, then ``overrides`` (coerced; unknown ones refused)."""
        values = {k: p.default for k, p in self.params.items()}
        for key, value in (overrides or {}).items():
            if key not in self.params:
                raise HarnessError(
                    f"experiment {self.name} has no parameter {key!r}",
                    fix=f"use one of: {', '.join(self.params)}",
                )
            values[key] = _coerce(value, self.params[key], key)
        return values

    def build(
        self, overrides: dict[str, Any] | None = None, *, platform: str = "local"
    ) -> Experiment:
        """The experiment with parameters ``overrides`` on ``platform`` (a name expressions
        can use, e.g. ``when: "platform == 'kubernetes'"``); a key with a dot
        (``scheduler.task_queued_timeout``) is an Airflow config override."""
        if platform not in PLATFORMS:
            raise HarnessError(f"unknown platform {platform!r}", fix="use local or kubernetes")
        overrides = dict(overrides or {})
        config = {k: str(overrides.pop(k)) for k in list(overrides) if "." in k}
        values = self.values(overrides)
        try:
            body = self._render(values, platform)
            experiment = Experiment.model_validate(body)
        except ValidationError as exc:
            lines = _problems(exc)
            raise HarnessError(
                f"{self.source}: with {values}: {lines[0]}"
                + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""),
                fix=f"check the parameters you set (`ha-bench list`): {overrides}"
                if overrides
                else f"run `ha-bench validate {self.source}`",
            ) from None
        if config:
            topology = dict(experiment.topology)
            topology["airflow_config"] = {**topology.get("airflow_config", {}), **config}
            experiment = experiment.replace(topology=topology)
        Topology().with_overrides(**experiment.topology)  # a bad topology fails before a start
        return experiment

    def _render(self, values: dict[str, Any], platform: str) -> dict[str, Any]:
        ctx = {**values, "platform": platform}
        for key, expr in self.file.vars.items():
            ctx[key] = _render(expr, ctx, f"vars.{key}")
        body = {k: v for k, v in self.raw.items() if k not in META}
        body = _render(body, ctx, "")
        topology = {k: values[k] for k in ("api_servers", "schedulers", "workers")}
        body["topology"] = {**topology, **(body.get("topology") or {})}
        config = body["topology"].get("airflow_config")
        if isinstance(config, dict):  # Airflow reads strings; "{{ n }}" gives a number
            body["topology"]["airflow_config"] = {k: str(v) for k, v in config.items()}
        body.setdefault("load_users", values["load_users"])
        # the replica counts the experiment runs with: the file's own where it sets them
        body["params"] = {**values, **{k: body["topology"][k] for k in topology},
                          "load_users": body["load_users"]}  # fmt: skip
        return body


def _check_names(source: str, ctx: dict[str, Any], where: str) -> None:
    unknown = jinja2.meta.find_undeclared_variables(_ENV.parse(source)) - set(ctx)
    if unknown:
        raise HarnessError(
            f"{where}: unknown name(s) {', '.join(sorted(unknown))} in {source!r}",
            fix=f"use a parameter or var: {', '.join(sorted(ctx))}",
        )


def _evaluate(expr: str, ctx: dict[str, Any], where: str) -> Any:
    _check_names("{{ " + expr.strip() + " }}", ctx, where)
    try:
        return _ENV.compile_expression(expr, undefined_to_none=False)(**ctx)
    except jinja2.TemplateError as exc:
        raise HarnessError(f"{where}: {exc} in {expr!r}", fix="correct the expression") from None


def _render(node: Any, ctx: dict[str, Any], where: str) -> Any:
    """``node`` with every expression evaluated and every ``when`` item filtered."""
    if isinstance(node, str):
        full = _FULL.match(node)
        if full and "{{" not in full.group(1):
            return _evaluate(full.group(1), ctx, where)
        if "{{" in node or "{%" in node:
            _check_names(node, ctx, where)
            return _ENV.from_string(node).render(**ctx)
        return node
    if isinstance(node, list):
        out = []
        for i, item in enumerate(node):
            here = f"{where}.{i}".lstrip(".")
            if isinstance(item, dict) and "when" in item:
                cond = item["when"]
                if isinstance(cond, str):
                    match = _FULL.match(cond)
                    cond = _evaluate(match.group(1) if match else cond, ctx, f"{here}.when")
                if not cond:
                    continue
                item = {k: v for k, v in item.items() if k != "when"}
            out.append(_render(item, ctx, here))
        return out
    if isinstance(node, dict):
        return {k: _render(v, ctx, f"{where}.{k}".lstrip(".")) for k, v in node.items()}
    return node


def _coerce(value: Any, param: Param, name: str) -> Any:
    default = param.default
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        value = _parse(value, default, name)
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise HarnessError(
            f"parameter {name}={value!r} is not a {kind.__name__}",
            fix=f"pass e.g. --set {name}={json.dumps(default)}",
        )
    if param.choices is not None and value not in param.choices:
        raise HarnessError(
            f"parameter {name}={value!r} is not one of {list(param.choices)}",
            fix=f"pass one of: {', '.join(map(str, param.choices))}",
        )
    return value


def _parse(value: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
    else:
        try:
            return type(default)(value)
        except ValueError:
            pass
    raise HarnessError(
        f"parameter {name}={value!r} is not a {type(default).__name__}",
        fix=f"pass e.g. --set {name}={default}",
    )


def read_file(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path`` (a one-line error for anything else)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise HarnessError(f"cannot read {path}: {exc.strerror}", fix="check the path") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise HarnessError(f"{path}: not valid YAML{at}", fix="correct the YAML syntax") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: not a mapping of fields", fix="see `ha-bench schema`")
    return data


def validate_file(path: Path) -> list[str]:
    """Every problem of an experiment file, each ``field.path: message``; none if valid.

    The file is checked as written, then built with its defaults and with each case's
    parameters, so an expression that yields a wrong type is found too.
    """
    try:
        raw = read_file(path)
        spec = ExperimentSpec(raw, str(path))
    except HarnessError as exc:
        return [str(exc)]
    except ValidationError as exc:
        return _problems(exc)
    problems = []
    for params in [{}] + [c.params for c in spec.cases]:
        for platform in PLATFORMS:
            try:
                spec.build(params, platform=platform)
            except HarnessError as exc:
                problems.append(str(exc))
    return list(dict.fromkeys(problems))


def load_spec(path: Path) -> ExperimentSpec:
    """A user's experiment file, validated (a one-line error naming the first problem)."""
    raw = read_file(path)
    try:
        return ExperimentSpec(raw, str(path))
    except ValidationError as exc:
        lines = _problems(exc, f"{path}: ")
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise HarnessError(lines[0] + more, fix=f"run `ha-bench validate {path}`") from None


def shipped_files() -> list[Path]:
    """The catalogue's experiment files, shipped in the package."""
    folder = resources.files("harness.run") / "experiments"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))


@functools.cache
def catalogue() -> dict[str, ExperimentSpec]:
    """Name → spec of every shipped experiment."""
    specs = {}
    for path in shipped_files():
        spec = load_spec(path)
        if spec.name != path.stem:
            raise HarnessError(f"{path}: name {spec.name!r} differs from the file name",
                               fix=f"rename the file to {spec.name}.yaml")  # fmt: skip
        specs[spec.name] = spec
    return specs


def spec_for(name_or_path: str | Path) -> ExperimentSpec:
    """A shipped experiment by name, or a user's file by path (``*.yaml`` / ``*.yml``)."""
    text = str(name_or_path)
    if text in catalogue():
        return catalogue()[text]
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        return load_spec(Path(text))
    raise HarnessError(
        f"unknown experiment {text!r}",
        fix=f"use one of: {', '.join(catalogue())} (see `ha-bench list`), or a .yaml file",
    )


def build(
    name_or_path: str | Path, overrides: dict[str, Any] | None = None, *, platform: str = "local"
) -> Experiment:
    """The experiment ``name_or_path`` with parameters ``overrides`` (unknown ones refused)."""
    return spec_for(name_or_path).build(overrides, platform=platform)


def suite_cases() -> list[tuple[str, Case]]:
    """(experiment, case) of every shipped case, grouped so that consecutive cases share a
    topology (one cluster start per group)."""
    cases = [(name, case) for name, spec in catalogue().items() for case in spec.cases]
    topology = {c.id: json.dumps(build(n, c.params).topology, sort_keys=True) for n, c in cases}
    first: dict[str, int] = {}
    for _, c in cases:
        first.setdefault(topology[c.id], len(first))
    return sorted(cases, key=lambda nc: first[topology[nc[1].id]])
