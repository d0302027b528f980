"""Every custom resource the operator serves, for CRD generation and documentation."""

from __future__ import annotations

from orchestrator_operator.models import installation, workflow
from orchestrator_operator.models.crd import PrinterColumn, ResourceDefinition, ready_columns

WORKFLOW = ResourceDefinition(
    kind=workflow.KIND,
    plural=workflow.PLURAL,
    singular=workflow.SINGULAR,
    short_names=workflow.SHORT_NAMES,
    spec_model=workflow.WorkflowSpec,
    status_model=workflow.WorkflowStatus,
    description="A Serverless Workflow definition and the SonataFlow runtime that serves it.",
    root_rules=workflow.CEL_RULES,
    spec_rules=workflow.SPEC_CEL_RULES,
    printer_columns=[
        *ready_columns(),
        PrinterColumn("Profile", ".spec.profile"),
        PrinterColumn("URL", ".status.url"),
        PrinterColumn("Workflow", ".status.workflowId", priority=1),
        PrinterColumn("Version", ".status.workflowVersion", priority=1),
        PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
    ],
)

INSTALLATION = ResourceDefinition(
    kind=installation.KIND,
    plural=installation.PLURAL,
    singular=installation.SINGULAR,
    short_names=installation.SHORT_NAMES,
    spec_model=installation.InstallationSpec,
    status_model=installation.InstallationStatus,
    description="A Data Index and a Jobs Service, the Backstage plugin's configuration, and the"
    " defaults of the Workflows that link to them.",
    root_rules=installation.CEL_RULES,
    spec_rules=installation.SPEC_CEL_RULES,
    printer_columns=[
        *ready_columns(),
        PrinterColumn("Data Index", ".status.endpoints.dataIndex"),
        PrinterColumn(
            "Workflows",
            ".status.workflows.summary",
            description="Linked workflows that are ready, of those linked.",
        ),
        PrinterColumn("Active", ".status.runs.active", type="integer", priority=1),
        PrinterColumn("Errors", ".status.runs.error", type="integer", priority=1),
        PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
    ],
)

ALL = [WORKFLOW, INSTALLATION]
