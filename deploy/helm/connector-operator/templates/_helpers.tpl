{{/* Names, labels and the env rendering shared by the templates. */}}

{{- define "connector-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name alone when it already holds the chart's name
(release connector-operator: the names of deploy/). Cluster-scoped objects carry it, so that
two releases never share one. */}}
{{- define "connector-operator.fullname" -}}
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

{{- define "connector-operator.gatewayName" -}}
{{- printf "%s-gateway" (include "connector-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "connector-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "connector-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: the ServiceAccount to run as, when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "connector-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Labels of every object; the argument is (list . "component"). */}}
{{- define "connector-operator.labels" -}}
{{- $ := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "connector-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
{{- end }}

{{- define "connector-operator.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "connector-operator.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* env entries from (list (list NAME value) ...): a null or empty value (""; [], {}) is left
out, so that the program's own default applies. Lists are joined with commas, maps are JSON,
whole numbers are written without an exponent (values files read them as floats). */}}
{{- define "connector-operator.env" -}}
{{- range . }}
{{- $name := index . 0 }}
{{- $value := index . 1 }}
{{- if kindIs "invalid" $value }}
{{- else if kindIs "slice" $value }}
{{- $value = join "," $value }}
{{- else if kindIs "map" $value }}
{{- $value = ternary "" (toJson $value) (empty $value) }}
{{- else if or (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) }}
{{- $value = ternary (printf "%d" (int64 $value)) (toString $value) (eq (float64 $value) (floor $value)) }}
{{- else }}
{{- $value = toString $value }}
{{- end }}
{{- if and (not (kindIs "invalid" $value)) (ne $value "") }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}
