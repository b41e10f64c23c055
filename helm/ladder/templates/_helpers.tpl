{{/* The chart name, or nameOverride. */}}
{{- define "ladder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, the prefix of every object. */}}
{{- define "ladder.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "ladder.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "ladder.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object but its component (which the caller adds once). */}}
{{- define "ladder.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ladder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels of the server's objects. */}}
{{- define "ladder.labels" -}}
{{ include "ladder.commonLabels" . }}
app.kubernetes.io/component: server
{{- end -}}

{{/*
After SIGTERM the server says NOT_SERVING but serves for shutdownDelaySeconds,
then lets in-flight calls finish for the grace, then exits within 5 s
(closing connections and the pool, flushing traces): the grace is what
terminationGracePeriodSeconds leaves after the delay and those 5 s.
*/}}
{{- define "ladder.shutdownGraceSeconds" -}}
{{- sub (sub .Values.terminationGracePeriodSeconds .Values.shutdownDelaySeconds) 5 -}}
{{- end -}}

{{/* Value combinations the schema cannot refuse. */}}
{{- define "ladder.validate" -}}
{{- if eq (int .Values.grpcPort) (int .Values.adminPort) }}
{{- fail (printf "grpcPort and adminPort are both %v: give the admin port its own" .Values.grpcPort) }}
{{- end }}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) }}
{{- fail (printf "autoscaling.minReplicas (%v) is above autoscaling.maxReplicas (%v)" .Values.autoscaling.minReplicas .Values.autoscaling.maxReplicas) }}
{{- end }}
{{- if and (eq .Values.database.pooler "transaction") (not .Values.database.existingSecret) (not .Values.database.directUrl) }}
{{- fail "database.pooler transaction needs database.directUrl (PostgreSQL itself, past the pooler, for the framework listener) or database.existingSecret holding it under database.directUrlKey" }}
{{- end }}
{{- if lt (int (include "ladder.shutdownGraceSeconds" .)) 1 }}
{{- fail (printf "terminationGracePeriodSeconds (%v) leaves no grace for in-flight calls: it must be at least shutdownDelaySeconds (%v) + 6" .Values.terminationGracePeriodSeconds .Values.shutdownDelaySeconds) }}
{{- end }}
{{- end -}}

{{/* Labels of the server pods (not the migration Job's). */}}
{{- define "ladder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ladder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "ladder.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ladder.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ladder.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Secret holding the application role's URL. */}}
{{- define "ladder.databaseSecret" -}}
{{- default (printf "%s-database" (include "ladder.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}

{{/* Secret holding the owner role's URL: a hook Secret of its own when the
chart creates it, so it exists before the migration Job and is deleted after. */}}
{{- define "ladder.migrationSecret" -}}
{{- default (printf "%s-migration" (include "ladder.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}

{{- define "ladder.jwtSecret" -}}
{{- default (printf "%s-jwt" (include "ladder.fullname" .)) .Values.jwt.existingSecret -}}
{{- end -}}

{{/* Restricted pod security: non-root, no privilege, default seccomp. */}}
{{- define "ladder.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "ladder.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* OTEL_RESOURCE_ATTRIBUTES: where the pod runs, the version, then the user's. */}}
{{- define "ladder.resourceAttributes" -}}
{{- $attributes := list "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" (printf "service.version=%s" (.Values.image.tag | default .Chart.AppVersion)) -}}
{{- range $key, $value := .Values.otel.resourceAttributes -}}
{{- $attributes = append $attributes (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $attributes -}}
{{- end -}}
