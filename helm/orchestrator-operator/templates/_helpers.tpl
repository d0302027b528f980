{{/*
Names, labels and the image reference shared by every template.
*/}}

{{- define "orchestrator-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: the release name alone when it already contains the chart's name.
*/}}
{{- define "orchestrator-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "orchestrator-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: only labels that never change over the life of a release, because a
Deployment's selector is immutable.
*/}}
{{- define "orchestrator-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orchestrator-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "orchestrator-operator.labels" -}}
{{ include "orchestrator-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "orchestrator-operator.chart" . }}
{{- end }}

{{- define "orchestrator-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "orchestrator-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image, by digest when one is given, otherwise by tag (the appVersion by default).
*/}}
{{- define "orchestrator-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag | toString }}
{{- if eq $tag "latest" }}
{{- fail "image.tag must name a version, not latest" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The rights the operator needs in each namespace it serves: in a ClusterRole when it serves
all of them, in one Role per namespace otherwise. No wildcards and no `update`: every write is
a server-side apply (patch, and create when the object is new), a merge patch of a status, a
delete or a new Event. Secrets are only read.
*/}}
{{- define "orchestrator-operator.namespacedRules" -}}
# The resources the operator serves: read, and their status written. The git mirror also
# applies the Workflows it mirrors and deletes those whose folder left the source; the
# installations are their users' alone.
- apiGroups: ["orchestrator.dev"]
  resources: ["workflows"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["orchestrator.dev"]
  resources: ["orchestratorinstances"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["orchestrator.dev"]
  resources: ["workflows/status", "orchestratorinstances/status"]
  verbs: ["patch"]
# What a Workflow and an installation become: properties and resource files, the runtime's
# and the Data Index's Services and Deployments, and the NetworkPolicies around them. Read
# before the first apply, to refuse taking over an object of the same name; deleted when an
# installation no longer has a service, or a mirrored folder goes.
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Pods are only watched, to tell why a runtime does not start (image pulls, crashes).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# Secrets are only read: their key names for a Workflow's status, git credentials for the
# mirror. The operator never creates or changes a Secret.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# Events for the owners of Workflows and installations. The controllers and kopf (for its own
# failures) only ever post new core/v1 Events.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
