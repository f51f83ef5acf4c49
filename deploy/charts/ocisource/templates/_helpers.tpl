{{/* The chart's name. */}}
{{- define "ocisource.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release name when it contains the chart's name. */}}
{{- define "ocisource.fullname" -}}
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

{{/* The labels the pods are selected by (Flux's scheme: `app: <controller>`). */}}
{{- define "ocisource.selectorLabels" -}}
app: {{ include "ocisource.fullname" . }}
{{- end }}

{{/* Labels every object carries: Flux's (as on source-controller), then Helm's (helm.sh/chart,
  managed-by, instance). */}}
{{- define "ocisource.labels" -}}
{{ include "ocisource.selectorLabels" . }}
app.kubernetes.io/name: {{ include "ocisource.name" . }}
app.kubernetes.io/component: {{ include "ocisource.name" . }}
app.kubernetes.io/part-of: flux
control-plane: controller
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ocisource.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ocisource.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository:tag, or repository:tag@digest. */}}
{{- define "ocisource.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* --watch-label-selector: the shard when beside Flux. */}}
{{- define "ocisource.labelSelector" -}}
{{- if .Values.besideFlux.enabled }}
{{- printf "sharding.fluxcd.io/key=%s" .Values.besideFlux.shardKey }}
{{- else }}
{{- .Values.watch.labelSelector }}
{{- end }}
{{- end }}

{{/* --feature-gates: the gates set to true, sorted by name; empty when none is. */}}
{{- define "ocisource.featureGates" -}}
{{- $gates := list }}
{{- range $name, $on := .Values.featureGates }}
{{- if $on }}
{{- $gates = append $gates (printf "%s=true" $name) }}
{{- end }}
{{- end }}
{{- join "," $gates }}
{{- end }}

{{/* `--flag=value` lines for the values that are set (not null), in the order given; numbers
  from YAML files arrive as floats and are printed as integers (the schema allows no fraction). */}}
{{- define "ocisource.optionalArgs" -}}
{{- range . }}
{{- $v := index . 1 }}
{{- if kindIs "float64" $v }}
{{- $v = int64 $v }}
{{- end }}
{{- if not (kindIs "invalid" $v) }}
- --{{ index . 0 }}={{ $v }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ocisource.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}
