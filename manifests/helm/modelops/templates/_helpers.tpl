{{/* Chart name, overridable. */}}
{{- define "modelops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "modelops.fullname" -}}
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

{{/* Labels that select the operator pods; never change them across upgrades (selectors are immutable). */}}
{{- define "modelops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on every object the chart creates, except the component. */}}
{{- define "modelops.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "modelops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: modelops
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels on the operator's objects. */}}
{{- define "modelops.labels" -}}
{{ include "modelops.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "modelops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelops.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* True ("true") when the operator watches every namespace. */}}
{{- define "modelops.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/*
Policy rules from files/operator-rules.yaml, the single source of the operator's permissions.
Call with (dict "root" $ "scope" S): S is "all" (every rule), "cluster" (only cluster-scoped
resources, which a Role cannot grant) or "namespaced" (the rest). Peering rules are dropped when
peering is off.
*/}}
{{- define "modelops.rules" -}}
{{- $clusterScoped := list "customresourcedefinitions" "namespaces" "clusterkopfpeerings" }}
{{- $scope := .scope }}
{{- $rules := list }}
{{- range (.root.Files.Get "files/operator-rules.yaml" | fromYamlArray) }}
{{- if or $.root.Values.peering.enabled (not (has "kopf.dev" .apiGroups)) }}
{{- $picked := list }}
{{- range .resources }}
{{- $isCluster := has . $clusterScoped }}
{{- if or (eq $scope "all") (and (eq $scope "cluster") $isCluster) (and (eq $scope "namespaced") (not $isCluster)) }}
{{- $picked = append $picked . }}
{{- end }}
{{- end }}
{{- if $picked }}
{{- $rules = append $rules (dict "apiGroups" .apiGroups "resources" $picked "verbs" .verbs) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{/*
A security context (dict "root" $ "context" C) as JSON, without the IDs when platformAssignedIds leaves them to
the platform (OpenShift assigns each namespace's own); fsGroupChangePolicy goes with fsGroup.
*/}}
{{- define "modelops.withoutIds" -}}
{{- if .root.Values.platformAssignedIds }}
{{- omit .context "runAsUser" "runAsGroup" "fsGroup" "fsGroupChangePolicy" | toJson }}
{{- else }}
{{- .context | toJson }}
{{- end }}
{{- end }}
