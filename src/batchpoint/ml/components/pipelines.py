"""Pipeline components behind a batch deployment: checking the graph, binding an invoke's inputs, planning steps.

A pipeline component's spec (as azure-ai-ml registers it) has typed `inputs` and `outputs` and `jobs`: one node per
step, each naming a registered command component (`componentId`) and binding its inputs to the pipeline's inputs
(`${{parent.inputs.x}}`), to another step's output (`${{parent.jobs.n.outputs.y}}`) or to a literal, and its
outputs to the pipeline's outputs (`${{parent.outputs.z}}`). A node may also set its process's
`environment_variables` and name its `compute`: Azure keeps both on the node, never in the command component (whose
spec azure-ai-ml sends without them).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchpoint.arm.errors import ArmError, bad_request
from batchpoint.ml.assets.references import resolve_version
from batchpoint.ml.components.wire import JobInput, Literal
from batchpoint.store import Store

PARENT_INPUT = re.compile(r"^\$\{\{\s*parent\.inputs\.(?P<name>[\w.-]+)\s*\}\}$")
STEP_OUTPUT = re.compile(r"^\$\{\{\s*parent\.jobs\.(?P<step>[\w-]+)\.outputs\.(?P<name>[\w.-]+)\s*\}\}$")
PARENT_OUTPUT = re.compile(r"^\$\{\{\s*parent\.outputs\.(?P<name>[\w.-]+)\s*\}\}$")
PLACEHOLDER = re.compile(r"\$\{\{\s*(?P<kind>inputs|outputs)\.(?P<name>[\w.-]+)\s*\}\}")
COMMAND_TOKEN = re.compile(r"\$\[\[(?P<fragment>.*?)\]\]|" + PLACEHOLDER.pattern, re.DOTALL)
"""An optional fragment `$[[...]]` or a placeholder outside one, in a command."""
DATA_TYPES = ("uri_folder", "uri_file")
MODEL_TYPES = ("custom_model", "mlflow_model", "triton_model")
ASSET_TYPES = (*DATA_TYPES, "mltable", *MODEL_TYPES)
"""Input types whose value is a location (a URI, a data asset or a model), handed to a step as a local path."""
SINGLE_INPUT_KEYS = ("urifolder", "urifile")
"""`batch_endpoints.invoke(input=...)` names its one input by type; it binds to the pipeline's only data input."""


@dataclass(frozen=True)
class StepInput:
    value: str
    """A `${{parent...}}` reference, a literal, or an asset's location (a URI, a data asset, a model)."""
    type: str
    """The binding's `job_input_type` (`literal`, `uri_folder`, `custom_model`, ...)."""


@dataclass(frozen=True)
class Node:
    name: str
    component_id: str
    spec: dict[str, Any]
    """The command component's spec."""
    inputs: dict[str, StepInput]
    """Component input name to its binding, as registered."""
    outputs: dict[str, str | None]
    """Component output name to the pipeline output it is, or None for an intermediate output."""
    environment_variables: dict[str, str] = field(default_factory=dict)
    """The node's `environment_variables`: set in its step's process."""
    compute: str | None = None
    """The compute the node names; None: the pipeline's default."""

    @property
    def depends_on(self) -> frozenset[str]:
        return frozenset(match["step"] for bound in self.inputs.values() if (match := STEP_OUTPUT.match(bound.value)))


@dataclass(frozen=True)
class Pipeline:
    component_id: str
    """The registered pipeline component; empty for a job's own graph."""
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    nodes: dict[str, Node] = field(default_factory=dict)

    def order(self) -> list[str]:
        """Steps in an order where each comes after the steps it reads from (the graph has no cycle)."""
        return _topological(self.nodes)


def load_pipeline(store: Store, workspace_id: str, reference: str) -> Pipeline:
    """The deployment's pipeline component, checked: ArmError 400 names every problem found."""
    component_id = resolve_version(store, workspace_id, "components", reference, "component")
    spec = _component_spec(store, component_id)
    if str(spec.get("type", "")).lower() != "pipeline":
        raise bad_request(
            f"The component '{reference}' is a '{spec.get('type')}' component; "
            "a pipeline deployment or pipeline job needs a pipeline component.",
            "UserError",
        )
    return pipeline_of_spec(store, workspace_id, component_id, spec, f"The pipeline component '{reference}'")


def pipeline_of_spec(store: Store, workspace_id: str, component_id: str, spec: dict[str, Any], what: str) -> Pipeline:
    """The graph of a pipeline component's spec, checked: ArmError 400 says `what` is not valid, naming every
    problem found."""
    problems: list[str] = []
    nodes = {}
    for name, job in _object(spec.get("jobs"), "'jobs'", problems).items():
        node = _node(store, workspace_id, name, job, problems)
        if node is not None:
            nodes[name] = node
    inputs = _objects(spec.get("inputs"), "pipeline input", problems)
    pipeline = Pipeline(component_id, inputs, _objects(spec.get("outputs"), "pipeline output", problems), nodes)
    problems += _binding_problems(pipeline)
    if not problems:
        try:
            pipeline.order()
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise ArmError(400, "UserError", f"{what} is not valid: " + "; ".join(problems))
    return pipeline


def job_component_spec(store: Store, workspace_id: str, job: dict[str, Any]) -> dict[str, Any]:
    """The pipeline component a pipeline job's properties run: the one it names (`componentId`, a job made from a
    pipeline component YAML) or one made of its `jobs` (a job built with the DSL). The job's input values become
    the inputs' defaults, so the component run with no inputs runs as the job did."""
    if job.get("jobs"):
        outputs = {name: {"type": _output_type(output)} for name, output in (job.get("outputs") or {}).items()}
        spec: dict[str, Any] = {"type": "pipeline", "inputs": {}, "outputs": outputs, "jobs": job["jobs"]}
    elif job.get("componentId"):
        component_id = load_pipeline(store, workspace_id, str(job["componentId"])).component_id
        spec = copy.deepcopy(_component_spec(store, component_id))
    else:
        raise bad_request(
            "A pipeline job needs its steps ('jobs') or a pipeline component ('componentId').", "UserError"
        )
    inputs = spec["inputs"] = dict(spec.get("inputs") or {})
    for name, given in (job.get("inputs") or {}).items():
        declared = dict(inputs.get(name) or {})
        value = _binding_value(given)
        inputs[name] = {**declared, "type": declared.get("type") or _input_type(given, value), "default": value}
    for name in _parent_inputs_read(spec):
        inputs.setdefault(name, {"type": "string", "optional": True})
    return spec


def _input_type(given: Any, value: Any) -> str:
    """A job input's type: its `jobInputType`, or for a literal the type of its value."""
    kind = str(
        (given.get("jobInputType") or given.get("job_input_type") or "") if isinstance(given, dict) else ""
    ).lower()
    if kind and kind != "literal":
        return kind
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number"}.get(type(value), "string")


def _output_type(output: Any) -> str:
    kind = (output.get("jobOutputType") or output.get("type")) if isinstance(output, dict) else None
    return str(kind or "uri_folder").lower()


def _parent_inputs_read(spec: dict[str, Any]) -> set[str]:
    """The pipeline inputs a job's steps read: a job leaves out the optional inputs it did not bind."""
    return {
        match["name"]
        for job in (spec.get("jobs") or {}).values()
        for value in (job.get("inputs") or {}).values()
        if (match := PARENT_INPUT.match(str(_binding_value(value))))
    }


def _component_spec(store: Store, component_id: str) -> dict[str, Any]:
    version = store.get(component_id)
    spec = (version.body["properties"].get("componentSpec") if version else None) or {}
    return spec if isinstance(spec, dict) else {}


def _object(value: Any, what: str, problems: list[str]) -> dict[str, Any]:
    """A part of a spec that must be a JSON object (absent is empty); anything else is a problem."""
    if value is None or isinstance(value, dict):
        return value or {}
    problems.append(f"{what} must be an object")
    return {}


def _objects(value: Any, what: str, problems: list[str]) -> dict[str, dict[str, Any]]:
    """Declarations by name (inputs, outputs), each an object."""
    return {
        name: _object(item, f"{what} '{name}'", problems) for name, item in _object(value, f"{what}s", problems).items()
    }


def _node(store: Store, workspace_id: str, name: str, job: Any, problems: list[str]) -> Node | None:
    if not isinstance(job, dict):
        problems.append(f"step '{name}' must be an object")
        return None
    reference = str(job.get("componentId") or "")
    if not reference:
        problems.append(f"step '{name}' names no component")
        return None
    try:
        component_id = resolve_version(store, workspace_id, "components", reference, "component")
    except ArmError:
        problems.append(f"step '{name}' references the component '{reference}', which does not exist")
        return None
    spec = _component_spec(store, component_id)
    if str(spec.get("type", "")).lower() != "command" or not isinstance(spec.get("command"), str):
        problems.append(f"step '{name}': only command components can run as steps (got '{spec.get('type')}')")
        return None
    found = len(problems)
    spec = {
        **spec,
        "inputs": _objects(spec.get("inputs"), f"step '{name}' component input", problems),
        "outputs": _objects(spec.get("outputs"), f"step '{name}' component output", problems),
    }
    bindings = _object(job.get("inputs"), f"step '{name}' inputs", problems)
    bound_outputs = _object(job.get("outputs"), f"step '{name}' outputs", problems)
    variables = _variables(job.get("environment_variables"), f"step '{name}'", problems)
    if len(problems) > found:
        return None
    inputs = {key: _step_input(value) for key, value in bindings.items()}
    outputs = {}
    for key, value in bound_outputs.items():
        match = PARENT_OUTPUT.match(str(_binding_value(value)))
        outputs[key] = match["name"] if match else None
    compute = job.get("compute")
    return Node(name, component_id, spec, inputs, outputs, variables, str(compute) if compute else None)


def _variables(value: Any, what: str, problems: list[str]) -> dict[str, str]:
    """A node's `environment_variables`: names as a process environment allows them, each value a scalar (a YAML
    `N: 3` arrives as a number; it is set as its JSON text)."""
    variables = {}
    for key, given in _object(value, f"{what} environment_variables", problems).items():
        text = given if isinstance(given, str) else json.dumps(given)
        if not key or "=" in key or "\0" in key:
            problems.append(f"{what} environment variable name {key!r} is not valid (empty, or with '=' or NUL)")
        elif isinstance(given, dict | list) or given is None or "\0" in text:
            problems.append(f"{what} environment variable '{key}' must be a string, a number or a boolean")
        else:
            variables[key] = text
    return variables


def _binding_value(value: Any) -> Any:
    """A binding as the SDK sends it: `{"value": ...}` for literals and references, `{"uri": ...}` (or `path`) for
    assets; a bare value is a literal."""
    if not isinstance(value, dict):
        return value
    return next((value[key] for key in ("value", "uri", "path") if value.get(key) is not None), "")


def _step_input(value: Any) -> StepInput:
    kind = (value.get("job_input_type") or value.get("jobInputType")) if isinstance(value, dict) else None
    return StepInput(str(_binding_value(value)), str(kind or "literal").lower())


def _binding_problems(pipeline: Pipeline) -> list[str]:
    problems = []
    for node in pipeline.nodes.values():
        declared = node.spec.get("inputs") or {}
        for key, bound in node.inputs.items():
            value = bound.value
            if key not in declared:
                problems.append(f"step '{node.name}' binds '{key}', which its component has no input of")
            elif (match := PARENT_INPUT.match(value)) and match["name"] not in pipeline.inputs:
                problems.append(
                    f"step '{node.name}' input '{key}' reads the pipeline input '{match['name']}', which does not exist"
                )
            elif (match := STEP_OUTPUT.match(value)) and not _has_output(pipeline, match["step"], match["name"]):
                problems.append(
                    f"step '{node.name}' input '{key}' reads '{match['step']}.outputs.{match['name']}', "
                    "which does not exist"
                )
        for key, spec in declared.items():
            if key not in node.inputs and not _has_default(spec):
                problems.append(f"step '{node.name}' input '{key}' is not bound")
    return problems + _output_problems(pipeline)


def _output_problems(pipeline: Pipeline) -> list[str]:
    """Pipeline outputs that no step produces, and step outputs bound to pipeline outputs that do not exist."""
    produced = {output for node in pipeline.nodes.values() for output in node.outputs.values() if output}
    problems = [
        f"the pipeline output '{name}' is bound to no step" for name in pipeline.outputs if name not in produced
    ]
    for node in pipeline.nodes.values():
        problems += [
            f"step '{node.name}' output '{key}' is bound to the pipeline output '{output}', which does not exist"
            for key, output in node.outputs.items()
            if output is not None and output not in pipeline.outputs
        ]
    return problems


def _has_output(pipeline: Pipeline, step: str, name: str) -> bool:
    node = pipeline.nodes.get(step)
    return node is not None and name in (node.spec.get("outputs") or {})


def _has_default(spec: Any) -> bool:
    return isinstance(spec, dict) and (spec.get("default") is not None or bool(spec.get("optional")))


def _topological(nodes: dict[str, Node]) -> list[str]:
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name) :] + [name]
            raise ValueError(f"the steps form a cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for upstream in sorted(nodes[name].depends_on):
            visit(upstream, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in sorted(nodes):
        visit(name, [])
    return order


# --- invoke -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundInput:
    type: str
    """The pipeline input's declared type: uri_folder, uri_file, string, integer, number or boolean."""
    value: Any
    """A data input's URI, or a literal's value (typed)."""


def bind_inputs(pipeline: Pipeline, given: Mapping[str, JobInput | Literal]) -> dict[str, BoundInput]:
    """The invoke's inputs by name, with the component's defaults; 400 naming unknown or missing ones."""
    request = _single_input_by_type(pipeline, given)
    unknown = sorted(set(request) - set(pipeline.inputs))
    if unknown:
        raise bad_request(
            f"Unknown input(s) {', '.join(unknown)}; the pipeline takes: {', '.join(pipeline.inputs) or 'none'}.",
            "UserError",
        )
    bound, missing = {}, []
    for name, spec in pipeline.inputs.items():
        kind = str((spec or {}).get("type", "string")).lower()
        if name in request:
            bound[name] = BoundInput(kind, _typed(name, kind, request[name]))
        elif (spec or {}).get("default") is not None:
            bound[name] = BoundInput(kind, _literal(name, kind, spec["default"]))
        elif not (spec or {}).get("optional"):
            missing.append(name)
    if missing:
        raise bad_request(f"Missing required input(s): {', '.join(missing)}.", "UserError")
    return bound


def _single_input_by_type(
    pipeline: Pipeline, request: Mapping[str, JobInput | Literal]
) -> Mapping[str, JobInput | Literal]:
    keys = [key for key in request if key.lower() in SINGLE_INPUT_KEYS and key not in pipeline.inputs]
    data_inputs = [
        name for name, spec in pipeline.inputs.items() if str((spec or {}).get("type", "")).lower() in DATA_TYPES
    ]
    if len(keys) == 1 and len(data_inputs) == 1:
        renamed = dict(request)
        renamed[data_inputs[0]] = renamed.pop(keys[0])
        return renamed
    return request


def _typed(name: str, kind: str, given: JobInput | Literal) -> Any:
    if kind in ASSET_TYPES:
        uri = given.uri if isinstance(given, JobInput) else None
        if not uri:
            raise bad_request(
                f"The input '{name}' is a {kind}: give it as {{'jobInputType': 'UriFolder', 'uri': ...}}.", "UserError"
            )
        return uri
    value = given.value if isinstance(given, JobInput) else given
    return _literal(name, kind, value)


def _literal(name: str, kind: str, value: Any) -> Any:
    try:
        if kind == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "number":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "boolean":
            text = str(value).lower()
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
    except (TypeError, ValueError):
        raise bad_request(
            f"The input '{name}' must be {'an' if kind == 'integer' else 'a'} {kind}, not {value!r}.", "UserError"
        ) from None
    if isinstance(value, dict | list):
        raise bad_request(f"The input '{name}' must be a {kind} value.", "UserError")
    return str(value)


def command_line(command: str, values: dict[str, str], node: str) -> str:
    """A command component's command with `${{inputs.x}}` / `${{outputs.y}}` replaced by shell-quoted values.

    An optional fragment `$[[...]]` is kept (without its brackets) when every placeholder in it has a value, and
    dropped otherwise; a placeholder without a value outside one is refused."""

    def replace(match: re.Match[str]) -> str:
        if match["fragment"] is None:
            return _quoted(match, values, node)
        keys = [_placeholder_key(found) for found in PLACEHOLDER.finditer(match["fragment"])]
        if not all(key in values for key in keys):
            return ""
        return PLACEHOLDER.sub(lambda found: _quoted(found, values, node), match["fragment"])

    return COMMAND_TOKEN.sub(replace, command)


def _placeholder_key(match: re.Match[str]) -> str:
    return f"{match['kind']}.{match['name']}"


def _quoted(match: re.Match[str], values: dict[str, str], node: str) -> str:
    key = _placeholder_key(match)
    if key not in values:
        raise ArmError(400, "UserError", f"The step '{node}' command uses ${{{{{key}}}}}, which has no value.")
    return shlex.quote(values[key])
