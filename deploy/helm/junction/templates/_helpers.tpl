{{/* The chart's name. */}}
{{- define "junction.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, used for every object. */}}
{{- define "junction.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "junction.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "junction.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the gateway's pods. */}}
{{- define "junction.selectorLabels" -}}
app.kubernetes.io/name: {{ include "junction.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "junction.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "junction.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "junction.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "junction.secretName" -}}
{{- default (printf "%s-keys" (include "junction.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "junction.artifactClaim" -}}
{{- default (printf "%s-artifacts" (include "junction.fullname" .)) .Values.hosting.artifacts.existingClaim }}
{{- end }}

{{/* Where the database URL comes from: the bundled PostgreSQL's secret, or the external one. */}}
{{- define "junction.databaseEnv" -}}
{{- if .Values.postgresql.bundled }}
- name: JUNCTION_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "junction.fullname" . }}-postgresql, key: database-url}}
{{- else if .Values.postgresql.external.existingSecret }}
- name: JUNCTION_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.postgresql.external.existingSecret }}, key: {{ .Values.postgresql.external.existingSecretKey }}}}
{{- else if .Values.postgresql.external.url }}
- name: JUNCTION_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "junction.fullname" . }}-external, key: database-url}}
{{- else }}
{{- fail "postgresql: set bundled: true, external.url or external.existingSecret (replicas share state through PostgreSQL)" }}
{{- end }}
{{- end }}

{{- define "junction.redisEnv" -}}
{{- if .Values.redis.bundled }}
- name: JUNCTION_REDIS_URL
  value: {{ printf "redis://%s-redis:6379/0" (include "junction.fullname" .) | quote }}
{{- else if .Values.redis.external.existingSecret }}
- name: JUNCTION_REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.redis.external.existingSecret }}, key: {{ .Values.redis.external.existingSecretKey }}}}
{{- else if .Values.redis.external.url }}
- name: JUNCTION_REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ include "junction.fullname" . }}-external, key: redis-url}}
{{- end }}
{{- end }}

{{- define "junction.redisEnabled" -}}
{{- if or .Values.redis.bundled .Values.redis.external.existingSecret .Values.redis.external.url }}true{{ end }}
{{- end }}
