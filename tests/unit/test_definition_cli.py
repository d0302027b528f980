"""`orchestrator-operator validate PATH...`: one line per PATH when fine, one per problem when
not, and a failing exit status when any PATH has a problem."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from orchestrator_operator.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPOSITORY = FIXTURES / "rhdh-serverless-workflows"
KOGITO = FIXTURES / "kogito-serverless-examples"


def _validate(*paths: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["validate", *map(str, paths)])
    return result.exit_code, result.output.splitlines()


def test_good_folders_and_files_print_ok() -> None:
    greeting = REPOSITORY / "greeting"
    foreach = KOGITO / "serverless-workflow-foreach-quarkus" / "foreach.sw.json"

    status, lines = _validate(greeting, REPOSITORY / "bulk-import-git-repos", foreach)

    assert status == 0
    assert lines == [
        f"{greeting}: ok (id greeting, version 1.0)",
        f"{REPOSITORY / 'bulk-import-git-repos'}: ok (id universal-pr, version 1.0)",
        f"{foreach}: ok (id foreach, no version)",
    ]


def test_each_problem_gets_a_line_and_the_status_fails(tmp_path: Path) -> None:
    copy = tmp_path / "repository"
    shutil.copytree(REPOSITORY, copy)
    definition = copy / "greeting" / "greeting.sw.yaml"
    definition.write_text(
        definition.read_text().replace("transition: GreetPerson", "transition: Nowhere", 1)
    )
    (copy / "greeting" / "schemas" / "greeting.sw.input-schema.json").unlink()

    status, lines = _validate(copy / "greeting", copy / "list-users")

    assert status == 1
    assert lines == [
        f'{copy / "greeting"}: InvalidStateGraph: state "GreetInEnglish": transition to '
        '"Nowhere" names no state',
        f"{copy / 'greeting'}: MissingResourceFile: dataInputSchema names "
        '"schemas/greeting.sw.input-schema.json", but the resource files hold no '
        '"schemas/greeting.sw.input-schema.json"',
        f"{copy / 'list-users'}: ok (id list-users, version 0.1)",
    ]


def test_a_repository_folder_is_explained() -> None:
    status, lines = _validate(REPOSITORY)

    assert status == 1
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{REPOSITORY}: InvalidWorkflowFolder: the folder holds no definition"
    )
    assert "greeting/" in lines[0]


def test_a_definition_that_does_not_parse(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sw.json"
    broken.write_text('{"id": "broken",')

    status, lines = _validate(broken)

    assert status == 1
    assert lines == [
        f"{broken}: InvalidDefinition: broken.sw.json: is not valid JSON: Expecting property "
        "name enclosed in double quotes (line 1, column 17)"
    ]


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    status, _ = _validate(tmp_path / "nothing")

    assert status == 2
