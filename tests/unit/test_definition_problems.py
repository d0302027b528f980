"""Each kind of mistake, made in a copy of a real workflow, gives exactly one problem that
names its reason and the thing at fault."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.definition import (
    INVALID_DEFINITION,
    INVALID_EXPRESSION,
    INVALID_RESOURCE_FILE,
    INVALID_STATE_GRAPH,
    MISSING_RESOURCE_FILE,
    UNRESOLVED_REFERENCE,
    Problem,
    WorkflowFolder,
    load_definition_file,
    load_workflow_folder,
    validate_definition,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPOSITORY = FIXTURES / "rhdh-serverless-workflows"
KOGITO = FIXTURES / "kogito-serverless-examples"

Definition = dict[str, Any]
Files = dict[str, bytes]


@functools.cache
def _load(folder: str) -> WorkflowFolder:
    if folder.endswith(".sw.json"):
        return load_definition_file(KOGITO / folder)
    return load_workflow_folder(REPOSITORY / folder)


def changed(folder: str, change: Callable[[Definition, Files], None]) -> tuple[Definition, Files]:
    """A copy of a real workflow, with one change made to it."""
    workflow = _load(folder)
    definition, files = copy.deepcopy(workflow.definition), dict(workflow.files)
    change(definition, files)
    return definition, files


def state(definition: Definition, name: str) -> dict[str, Any]:
    return next(s for s in definition["states"] if s["name"] == name)


def function(definition: Definition, name: str) -> dict[str, Any]:
    return next(f for f in definition["functions"] if f["name"] == name)


def edit_json(files: Files, path: str, change: Callable[[Any], None]) -> None:
    document = json.loads(files[path])
    change(document)
    files[path] = json.dumps(document).encode()


@dataclass(frozen=True)
class Case:
    name: str
    folder: str
    change: Callable[[Definition, Files], None]
    reason: str
    says: tuple[str, ...]
    path: str = ""
    file: str | None = None


def _loop_back(d: Definition, _: Files) -> None:
    greet = state(d, "GreetPerson")
    del greet["end"]
    greet["transition"] = "ChooseOnLanguage"


def _break_state_data_filter(d: Definition, _: Files) -> None:
    state(d, "getDisplayName")["stateDataFilter"]["output"] = "{result: .azureProfile.displayName"


def _add_switch_without_conditions(d: Definition, _: Files) -> None:
    d["states"].append({"name": "Decide", "type": "switch", "defaultCondition": {"end": True}})
    state(d, "GreetInEnglish")["transition"] = "Decide"


CASES = [
    Case(
        "unknown start state",
        "greeting",
        lambda d, f: d.update(start="Nowhere"),
        INVALID_STATE_GRAPH,
        ('start state "Nowhere" names no state',),
        "/start",
    ),
    Case(
        "no start state",
        "greeting",
        lambda d, f: d.pop("start"),
        INVALID_STATE_GRAPH,
        ("names no start state",),
        "/start",
    ),
    Case(
        "dangling transition",
        "greeting",
        lambda d, f: state(d, "GreetInEnglish").update(transition="Missing"),
        INVALID_STATE_GRAPH,
        ('state "GreetInEnglish": transition to "Missing" names no state',),
        "/states/1/transition",
    ),
    Case(
        "dangling switch condition",
        "greeting",
        lambda d, f: state(d, "ChooseOnLanguage")["defaultCondition"].update(
            transition={"nextState": "GreetInEnglsh"}
        ),
        INVALID_STATE_GRAPH,
        (
            'state "ChooseOnLanguage", defaultCondition: transition to "GreetInEnglsh" '
            'names no state (did you mean "GreetInEnglish"?)',
        ),
        "/states/0/defaultCondition/transition",
    ),
    Case(
        "duplicate state names",
        "greeting",
        lambda d, f: d["states"].append(copy.deepcopy(state(d, "GreetPerson"))),
        INVALID_STATE_GRAPH,
        ('state name "GreetPerson" is used by 2 states', "states/3, states/4"),
        "/states/4",
    ),
    Case(
        "no end reachable",
        "greeting",
        _loop_back,
        INVALID_STATE_GRAPH,
        ('no state reachable from start state "ChooseOnLanguage" ends the workflow',),
        "/states",
    ),
    Case(
        "unreachable state",
        "greeting",
        lambda d, f: d["states"].append({"name": "Orphan", "type": "inject", "end": True}),
        INVALID_STATE_GRAPH,
        ('state "Orphan" cannot be reached from start state "ChooseOnLanguage"',),
        "/states/4",
    ),
    Case(
        "state with neither transition nor end",
        "greeting",
        lambda d, f: state(d, "GreetInEnglish").pop("transition"),
        INVALID_STATE_GRAPH,
        ('state "GreetInEnglish" has neither transition nor end',),
        "/states/1",
    ),
    Case(
        "switch without conditions",
        "greeting",
        _add_switch_without_conditions,
        INVALID_STATE_GRAPH,
        ('switch state "Decide" has neither dataConditions nor eventConditions',),
        "/states/4",
    ),
    Case(
        "missing input schema file",
        "greeting",
        lambda d, f: f.pop("schemas/greeting.sw.input-schema.json"),
        MISSING_RESOURCE_FILE,
        ('dataInputSchema names "schemas/greeting.sw.input-schema.json"',),
        "/dataInputSchema",
    ),
    Case(
        "missing output schema file",
        "greeting",
        lambda d, f: f.pop("schemas/workflow-output-schema.json"),
        MISSING_RESOURCE_FILE,
        ('output schema names "schemas/workflow-output-schema.json"',),
        "/extensions/0/outputSchema",
    ),
    Case(
        "input schema path outside the resources root",
        "greeting",
        lambda d, f: d.update(dataInputSchema="../greeting.json"),
        MISSING_RESOURCE_FILE,
        ('dataInputSchema names "../greeting.json"', "outside the resources root"),
        "/dataInputSchema",
    ),
    Case(
        "missing OpenAPI file",
        "azure",
        lambda d, f: f.pop("specs/azure.yaml"),
        MISSING_RESOURCE_FILE,
        ('function "getDisplayName": operation names "specs/azure.yaml"',),
        "/functions/0/operation",
    ),
    Case(
        "unknown operationId",
        "azure",
        lambda d, f: function(d, "getDisplayName").update(operation="specs/azure.yaml#getProfil"),
        UNRESOLVED_REFERENCE,
        (
            'function "getDisplayName": operationId "getProfil" is not in OpenAPI file '
            '"specs/azure.yaml" (did you mean "getProfile"?)',
        ),
        "/functions/0/operation",
    ),
    Case(
        "unknown operationId in a JSON OpenAPI file",
        "modify-vm-resources",
        lambda d, f: function(d, "jiraGetIssue").update(operation="specs/jira-openapi.json#nope"),
        UNRESOLVED_REFERENCE,
        ('operationId "nope" is not in OpenAPI file "specs/jira-openapi.json"',),
        "/functions/3/operation",
    ),
    Case(
        "OpenAPI file that does not parse",
        "azure",
        lambda d, f: f.update({"specs/azure.yaml": b"openapi: [3.0\n"}),
        INVALID_RESOURCE_FILE,
        ('function "getDisplayName": OpenAPI file "specs/azure.yaml" is not valid YAML',),
        "/functions/0/operation",
    ),
    Case(
        "jq syntax error in a switch condition",
        "greeting",
        lambda d, f: state(d, "ChooseOnLanguage")["dataConditions"][0].update(
            condition='.language ==== "English"'
        ),
        INVALID_EXPRESSION,
        (
            'state "ChooseOnLanguage", dataConditions[0].condition: not a valid jq expression',
            "syntax error",
            '.language ==== "English"',
        ),
        "/states/0/dataConditions/0/condition",
    ),
    Case(
        "jq syntax error in a stateDataFilter",
        "azure",
        _break_state_data_filter,
        INVALID_EXPRESSION,
        ('state "getDisplayName", stateDataFilter.output: not a valid jq expression',),
        "/states/0/stateDataFilter/output",
    ),
    Case(
        "jq syntax error in an expression function",
        "greeting",
        lambda d, f: function(d, "successResult").update(operation='{ "result": { "message": 1, }'),
        INVALID_EXPRESSION,
        ('function "successResult", operation: not a valid jq expression',),
        "/functions/1/operation",
    ),
    Case(
        "jq syntax error in an explicit ${ } argument",
        "bulk-import-git-repos",
        lambda d, f: state(d, "GitHubCreateBranch")["actions"][0]["functionRef"][
            "arguments"
        ].update(message='${ "Creating branch for " + }'),
        INVALID_EXPRESSION,
        ('state "GitHubCreateBranch", actions[0], arguments.message: not a valid jq expression',),
        "/states/3/actions/0/functionRef/arguments/message",
    ),
    Case(
        "jq syntax error in a sub-flow",
        "escalation",
        lambda d, f: f.update(
            {
                "subflows/jiraSwf.sw.yaml": f["subflows/jiraSwf.sw.yaml"].replace(
                    b"""'.request.type =="create"'""", b"""'.request.type =="create" and'"""
                )
            }
        ),
        INVALID_EXPRESSION,
        ('subflows/jiraSwf.sw.yaml: state "OnRequest", dataConditions[0].condition',),
        "/states/1/dataConditions/0/condition",
        "subflows/jiraSwf.sw.yaml",
    ),
    Case(
        "undefined function",
        "greeting",
        lambda d, f: state(d, "GreetPerson")["actions"][0]["functionRef"].update(
            refName="greetFunctio"
        ),
        UNRESOLVED_REFERENCE,
        (
            'state "GreetPerson", action "greetAction": function "greetFunctio" is not '
            'defined in functions (did you mean "greetFunction"?)',
        ),
        "/states/3/actions/0/functionRef/refName",
    ),
    Case(
        "undefined function by its short form",
        "serverless-workflow-parallel-execution/parallel.sw.json",
        lambda d, f: d["states"][0]["branches"][1]["actions"][0].update(functionRef="triple"),
        UNRESOLVED_REFERENCE,
        ('state "Parallel", branch "branchB", actions[0]: function "triple" is not defined',),
        "/states/0/branches/1/actions/0/functionRef",
    ),
    Case(
        "undefined event",
        "escalation",
        lambda d, f: state(d, "WaitForApprovalEvent").update(eventRef="approvalEvnt"),
        UNRESOLVED_REFERENCE,
        ('state "WaitForApprovalEvent": event "approvalEvnt" is not defined in events',),
        "/states/3/eventRef",
    ),
    Case(
        "undefined event in an event state",
        "serverless-workflow-correlation-quarkus/correlation.sw.json",
        lambda d, f: d["states"][0]["onEvents"][0].update(eventRefs=["newAccount"]),
        UNRESOLVED_REFERENCE,
        ('state "New User Account Request", onEvents[0]: event "newAccount" is not defined',),
        "/states/0/onEvents/0/eventRefs",
    ),
    Case(
        "undefined error",
        "escalation",
        lambda d, f: state(d, "WaitForApprovalEvent")["onErrors"][0].update(errorRef="timeout"),
        UNRESOLVED_REFERENCE,
        ('state "WaitForApprovalEvent", onErrors[0]: error "timeout" is not defined in errors',),
        "/states/3/onErrors/0/errorRef",
    ),
    Case(
        "undefined retry",
        "greeting",
        lambda d, f: state(d, "GreetPerson")["actions"][0].update(retryRef="twice"),
        UNRESOLVED_REFERENCE,
        ('state "GreetPerson", action "greetAction": retry "twice" is not defined in retries',),
        "/states/3/actions/0/retryRef",
    ),
    Case(
        "fn: names no expression function",
        "greeting",
        lambda d, f: state(d, "ChooseOnLanguage")["dataConditions"][0].update(
            condition="${ fn:isEnglish }"
        ),
        UNRESOLVED_REFERENCE,
        ('dataConditions[0].condition: "fn:isEnglish" names no function of type expression',),
        "/states/0/dataConditions/0/condition",
    ),
    Case(
        "$ref to a missing file",
        "greeting",
        lambda d, f: f.pop("shared/schemas/workflow-result-schema.json"),
        MISSING_RESOURCE_FILE,
        (
            'schemas/workflow-output-schema.json: $ref "../shared/schemas/'
            'workflow-result-schema.json" names a file',
            '"shared/schemas/workflow-result-schema.json"',
        ),
        "/properties/result/$ref",
        "schemas/workflow-output-schema.json",
    ),
    Case(
        "$ref fragment that points to nothing",
        "greeting",
        lambda d, f: edit_json(
            f,
            "schemas/workflow-output-schema.json",
            lambda s: s["properties"]["result"].update(
                {"$ref": "../shared/schemas/workflow-result-schema.json#/properties/nope"}
            ),
        ),
        UNRESOLVED_REFERENCE,
        (
            '$ref "../shared/schemas/workflow-result-schema.json#/properties/nope" '
            "points to nothing",
        ),
        "/properties/result/$ref",
        "schemas/workflow-output-schema.json",
    ),
    Case(
        "input schema that is not a JSON Schema",
        "greeting",
        lambda d, f: edit_json(
            f,
            "schemas/greeting.sw.input-schema.json",
            lambda s: s["properties"]["language"].update(type="strin"),
        ),
        INVALID_RESOURCE_FILE,
        ('dataInputSchema "schemas/greeting.sw.input-schema.json" is not a valid JSON Schema',),
        "/dataInputSchema",
    ),
    Case(
        "unknown function type",
        "azure",
        lambda d, f: function(d, "getDisplayName").update(type="openapi"),
        INVALID_DEFINITION,
        ('function "getDisplayName": type "openapi" is not one of',),
        "/functions/0/type",
    ),
    Case(
        "unknown state type",
        "greeting",
        lambda d, f: state(d, "GreetInEnglish").update(type="assign"),
        INVALID_DEFINITION,
        ('state "GreetInEnglish": type "assign" is not one of',),
        "/states/1/type",
    ),
    Case(
        "transition of the wrong type",
        "greeting",
        lambda d, f: state(d, "GreetInEnglish").update(transition=["GreetPerson"]),
        INVALID_DEFINITION,
        ('state "GreetInEnglish": transition must be a state name',),
        "/states/1/transition",
    ),
    Case(
        "missing id",
        "greeting",
        lambda d, f: d.pop("id"),
        INVALID_DEFINITION,
        ("the definition has no id",),
        "/id",
    ),
    Case(
        "states that are not a list",
        "greeting",
        lambda d, f: d.update(states={"name": "x"}),
        INVALID_DEFINITION,
        ("the definition has states as a mapping; it needs a list of states",),
        "/states",
    ),
    # The runtime reads the definition from the file <id>.sw.json, which a pod mounts.
    Case(
        "id with a slash",
        "greeting",
        lambda d, f: d.update(id="team/greeting"),
        INVALID_DEFINITION,
        ("id 'team/greeting' holds a '/'", "'team/greeting.sw.json'"),
        "/id",
    ),
    Case(
        "id starting with two dots",
        "greeting",
        lambda d, f: d.update(id="..greeting"),
        INVALID_DEFINITION,
        ("id '..greeting' starts with '..'", "'..greeting.sw.json'"),
        "/id",
    ),
    Case(
        "id too long for a file name",
        "greeting",
        lambda d, f: d.update(id="g" * 248),
        INVALID_DEFINITION,
        ("is 248 bytes long", "the id at most 247"),
        "/id",
    ),
    Case(
        "id whose multibyte characters make it too long",
        "greeting",
        lambda d, f: d.update(id="é" * 124),
        INVALID_DEFINITION,
        ("is 248 bytes long",),
        "/id",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_one_mistake_gives_one_problem_that_names_it(case: Case) -> None:
    definition, files = changed(case.folder, case.change)

    problems = validate_definition(definition, files)

    assert [problem.reason for problem in problems] == [case.reason], problems
    problem = problems[0]
    for words in case.says:
        assert words in problem.message
    assert (problem.path, problem.file) == (case.path, case.file)


@pytest.mark.parametrize("workflow_id", ["g" * 247, "greeting.v2", "a..b", ".hidden", "x y"])
def test_ids_that_name_a_file_are_accepted(workflow_id: str) -> None:
    definition, files = changed("greeting", lambda d, f: d.update(id=workflow_id))

    assert validate_definition(definition, files) == []


def test_unresolved_sub_flow_is_reported_at_each_call() -> None:
    definition, files = changed("escalation", lambda d, f: f.pop("subflows/jiraSwf.sw.yaml"))

    problems = validate_definition(definition, files)

    assert [(p.reason, p.path) for p in problems] == [
        (UNRESOLVED_REFERENCE, "/states/0/actions/0/subFlowRef"),
        (UNRESOLVED_REFERENCE, "/states/1/actions/0/subFlowRef"),
    ]
    assert problems[0].message == (
        'state "CreateTicket", actions[0]: sub-flow "ticketingService" is not the id of any '
        "definition among the resource files"
    )


def test_sub_flow_given_by_workflow_id_resolves() -> None:
    definition, files = changed(
        "escalation",
        lambda d, f: state(d, "CreateTicket")["actions"][0].update(
            subFlowRef={"workflowId": "ticketingService", "version": "0.0.1"}
        ),
    )

    assert validate_definition(definition, files) == []


def test_two_definitions_with_one_id_are_reported() -> None:
    definition, files = changed(
        "escalation",
        lambda d, f: f.update({"subflows/copy.sw.yaml": f["subflows/jiraSwf.sw.yaml"]}),
    )

    problems = validate_definition(definition, files)

    assert [p.reason for p in problems] == [
        INVALID_DEFINITION,
        UNRESOLVED_REFERENCE,
        UNRESOLVED_REFERENCE,
    ]
    assert problems[0].message == (
        'the id "ticketingService" is used by 2 definitions (subflows/copy.sw.yaml, '
        "subflows/jiraSwf.sw.yaml); the runtime needs each id once"
    )
    assert 'sub-flow "ticketingService" is the id of 2 definitions' in problems[1].message


def test_sub_flow_resolves_its_files_next_to_itself() -> None:
    # jiraSwf.sw.yaml names specs/jira.yaml, which sits in subflows/specs/.
    definition, files = changed("escalation", lambda d, f: f.pop("subflows/specs/jira.yaml"))

    problems = validate_definition(definition, files)

    assert [(p.reason, p.file) for p in problems] == [
        (MISSING_RESOURCE_FILE, "subflows/jiraSwf.sw.yaml"),
        (MISSING_RESOURCE_FILE, "subflows/jiraSwf.sw.yaml"),
    ]
    assert problems[0].message == (
        'subflows/jiraSwf.sw.yaml: function "createJiraIssue": operation names "specs/jira.yaml", '
        'but the resource files hold no "subflows/specs/jira.yaml" or "specs/jira.yaml"'
    )


def test_jsonpath_workflow_is_not_checked_as_jq() -> None:
    jsonpath_filter = {"output": "$.numberType"}
    definition, files = changed(
        "serverless-workflow-error-quarkus/error.sw.json",
        lambda d, f: state(d, "even").update(stateDataFilter=jsonpath_filter),
    )
    assert definition["expressionLang"] == "jsonpath"

    assert validate_definition(definition, files) == []

    # The same expression in a jq workflow is reported, so the pass above is the language's.
    del definition["expressionLang"]
    assert [p.reason for p in validate_definition(definition, files)] == [INVALID_EXPRESSION]


def test_jq_accepts_the_names_the_runtime_supplies() -> None:
    definition, files = changed(
        "greeting",
        lambda d, f: state(d, "ChooseOnLanguage")["dataConditions"][0].update(
            condition="${ $WORKFLOW.instanceId != null and $SECRET.lang == .language and tolower }"
        ),
    )

    assert validate_definition(definition, files) == []


def test_function_arguments_that_are_not_jq_are_plain_text() -> None:
    # The runtime passes an argument that does not compile as the text itself.
    definition, files = changed(
        "greeting",
        lambda d, f: state(d, "GreetPerson")["actions"][0]["functionRef"]["arguments"].update(
            message="Hello, world: (not jq"
        ),
    )

    assert validate_definition(definition, files) == []


def test_fn_reference_to_an_expression_function_resolves() -> None:
    definition, files = changed(
        "greeting",
        lambda d, f: state(d, "ChooseOnLanguage")["dataConditions"][0].update(
            condition="${ fn:successResult }"
        ),
    )

    assert validate_definition(definition, files) == []


def test_uri_alias_to_a_local_file_is_checked() -> None:
    def alias(d: Definition, f: Files) -> None:
        d["extensions"].append(
            {
                "extensionid": "workflow-uri-definitions",
                "definitions": {"azureApi": "specs/azure.yaml"},
            }
        )
        function(d, "getDisplayName")["operation"] = "azureApi#getProfileX"

    definition, files = changed("azure", alias)

    problems = validate_definition(definition, files)

    assert [p.reason for p in problems] == [UNRESOLVED_REFERENCE]
    assert (
        'operationId "getProfileX" is not in OpenAPI file "specs/azure.yaml"' in problems[0].message
    )


def test_remote_uri_alias_is_not_checked() -> None:
    workflow = _load("create-ocp-project")

    assert any(
        f["operation"].startswith("notifications#") for f in workflow.definition["functions"]
    )
    assert validate_definition(workflow.definition, workflow.files) == []


def test_rpc_function_needs_its_proto_service_and_method() -> None:
    proto = b'syntax = "proto3";\nservice Greeter {\n  rpc SayHello (Req) returns (Res);\n}\n'

    def rpc(d: Definition, f: Files) -> None:
        d["functions"].append(
            {"name": "hello", "type": "rpc", "operation": "greeter.proto#Greeter#SayHi"}
        )
        state(d, "GreetPerson")["actions"].append({"functionRef": "hello"})
        f["greeter.proto"] = proto

    definition, files = changed("greeting", rpc)

    problems = validate_definition(definition, files)

    assert [p.message for p in problems] == [
        'function "hello": method "SayHi" is not in proto file "greeter.proto"'
    ]
    files.pop("greeter.proto")
    assert [p.reason for p in validate_definition(definition, files)] == [MISSING_RESOURCE_FILE]


def test_asyncapi_operation_ids_are_found() -> None:
    asyncapi = (
        b"asyncapi: 2.0.0\ninfo: {title: t, version: '1'}\n"
        b"channels:\n  orders:\n    publish:\n      operationId: sendOrder\n"
    )

    def use_asyncapi(d: Definition, f: Files) -> None:
        d["functions"].append(
            {"name": "send", "type": "asyncapi", "operation": "specs/orders.yaml#sendOrder"}
        )
        f["specs/orders.yaml"] = asyncapi

    definition, files = changed("greeting", use_asyncapi)
    assert validate_definition(definition, files) == []

    function(definition, "send")["operation"] = "specs/orders.yaml#receiveOrder"
    problems = validate_definition(definition, files)
    assert [p.message for p in problems] == [
        'function "send": operationId "receiveOrder" is not in AsyncAPI file "specs/orders.yaml"'
    ]


def test_problems_come_in_a_stable_order() -> None:
    def many(d: Definition, f: Files) -> None:
        f.pop("specs/azure.yaml")
        state(d, "getDisplayName")["stateDataFilter"]["output"] = "{"
        state(d, "getDisplayName")["actions"][0]["functionRef"]["refName"] = "nothing"
        d["states"].append({"name": "Orphan", "type": "inject", "end": True})
        d["id"] = 7

    definition, files = changed("azure", many)

    first = validate_definition(definition, files)
    second = validate_definition(copy.deepcopy(definition), dict(reversed(files.items())))

    assert first == second
    assert [p.reason for p in first] == [
        INVALID_DEFINITION,
        INVALID_STATE_GRAPH,
        UNRESOLVED_REFERENCE,
        INVALID_EXPRESSION,
        MISSING_RESOURCE_FILE,
    ]
    assert all(isinstance(p, Problem) for p in first)


def test_a_sub_flow_that_does_not_parse_comes_first() -> None:
    definition, files = changed(
        "escalation",
        lambda d, f: f.update({"subflows/jiraSwf.sw.yaml": b"id: [ticketingService\n"}),
    )

    problems = validate_definition(definition, files)

    assert [(p.reason, p.file) for p in problems] == [
        (INVALID_DEFINITION, "subflows/jiraSwf.sw.yaml"),
        (UNRESOLVED_REFERENCE, None),
        (UNRESOLVED_REFERENCE, None),
    ]
    assert problems[0].message.startswith("subflows/jiraSwf.sw.yaml: is not valid YAML")


def test_schema_formats_are_left_to_the_runtime() -> None:
    definition, files = changed(
        "greeting",
        lambda d, f: edit_json(
            f,
            "schemas/greeting.sw.input-schema.json",
            lambda s: s["properties"]["language"].update(pattern="^\\p{L}+$"),
        ),
    )

    assert validate_definition(definition, files) == []
