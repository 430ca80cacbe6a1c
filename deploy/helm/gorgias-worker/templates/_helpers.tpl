{{/* The chart's name and object names. */}}
{{- define "gorgias-worker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gorgias-worker.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "gorgias-worker.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: never change them on upgrade (selectors are immutable). */}}
{{- define "gorgias-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gorgias-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object; the component is passed as .component. */}}
{{- define "gorgias-worker.labels" -}}
{{ include "gorgias-worker.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: gorgias-worker
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gorgias-worker.serviceAccountName" -}}
{{- default (include "gorgias-worker.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "gorgias-worker.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The web port of the worker (config.worker.web_port, default 6066). */}}
{{- define "gorgias-worker.webPort" -}}
{{- $worker := default dict .Values.config.worker -}}
{{- default 6066 $worker.web_port -}}
{{- end -}}

{{/* kafka settings of the config, with the defaults the worker applies. */}}
{{- define "gorgias-worker.groupId" -}}
{{- $kafka := default dict .Values.config.kafka -}}
{{- default "gorgias-worker" $kafka.group_id -}}
{{- end -}}

{{- define "gorgias-worker.deployment" -}}
{{- $kafka := default dict .Values.config.kafka -}}
{{- default (include "gorgias-worker.groupId" .) $kafka.deployment -}}
{{- end -}}

{{/* Is the connection to Kafka TLS (SSL or SASL_SSL)? "true" or "". */}}
{{- define "gorgias-worker.kafkaUsesTls" -}}
{{- $kafka := default dict .Values.config.kafka -}}
{{- if has (default "PLAINTEXT" $kafka.security_protocol) (list "SSL" "SASL_SSL") -}}true{{- end -}}
{{- end -}}
