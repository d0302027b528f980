"""Workflow definitions: parse them, load them from disk, find what would keep them from running.

Everything here is pure except ``folder.py``, which reads workflow folders from disk.
"""

from orchestrator_operator.definition.folder import (
    WorkflowFolder,
    load_definition_file,
    load_workflow_folder,
)
from orchestrator_operator.definition.parse import DefinitionInfo, parse_definition, read_info
from orchestrator_operator.definition.problems import (
    INVALID_DEFINITION,
    INVALID_EXPRESSION,
    INVALID_RESOURCE_FILE,
    INVALID_STATE_GRAPH,
    INVALID_WORKFLOW_FOLDER,
    MISSING_RESOURCE_FILE,
    REASONS,
    UNRESOLVED_REFERENCE,
    DefinitionError,
    Problem,
    condition_for,
)
from orchestrator_operator.definition.validate import validate_definition

__all__ = [
    "INVALID_DEFINITION",
    "INVALID_EXPRESSION",
    "INVALID_RESOURCE_FILE",
    "INVALID_STATE_GRAPH",
    "INVALID_WORKFLOW_FOLDER",
    "MISSING_RESOURCE_FILE",
    "REASONS",
    "UNRESOLVED_REFERENCE",
    "DefinitionError",
    "DefinitionInfo",
    "Problem",
    "WorkflowFolder",
    "condition_for",
    "load_definition_file",
    "load_workflow_folder",
    "parse_definition",
    "read_info",
    "validate_definition",
]
