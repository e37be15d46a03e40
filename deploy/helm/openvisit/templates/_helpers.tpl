{{/* The selector labels of one component: openvisit.labels (dict "c" component). */}}
{{- define "openvisit.selector" -}}
app.kubernetes.io/name: openvisit
app.kubernetes.io/component: {{ .c }}
{{- end }}

{{- define "openvisit.labels" -}}
{{ include "openvisit.selector" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "openvisit.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Prometheus scrapes the operational listener on the pod's address. */}}
{{- define "openvisit.metricsAnnotations" -}}
{{- if .Values.metricsAnnotations }}
annotations:
  prometheus.io/scrape: "true"
  prometheus.io/scheme: http
  prometheus.io/port: {{ .Values.ports.metrics | quote }}
  prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* The three probes every serving role has; readiness of the recorder keeps the default failureThreshold. */}}
{{- define "openvisit.probes" -}}
startupProbe:
  httpGet: {path: /readyz, port: https, scheme: HTTPS}
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  httpGet: {path: /readyz, port: https, scheme: HTTPS}
  periodSeconds: 5
  timeoutSeconds: 3
  {{- if .readinessFailures }}
  failureThreshold: {{ .readinessFailures }}
  {{- end }}
livenessProbe:
  httpGet: {path: /healthz, port: https, scheme: HTTPS}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 6
{{- end }}

{{- define "openvisit.podSpecCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}
