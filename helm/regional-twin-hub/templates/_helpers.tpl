{{/*
Names and labels. Every pod carries app.kubernetes.io/component (web, worker, beat, consumer,
migrations); the NetworkPolicies, PDBs and Services select on it.
*/}}
{{- define "twinhub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "twinhub.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "twinhub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "twinhub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "twinhub.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "twinhub.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: regional-twin-hub
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "web") */}}
{{- define "twinhub.componentSelector" -}}
{{ include "twinhub.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "twinhub.componentLabels" -}}
{{ include "twinhub.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "twinhub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "twinhub.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "twinhub.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Pod and container security: not configurable beyond the uid/gid. Non-root, read-only root
filesystem, no privilege escalation, no capabilities, the runtime's default seccomp profile.
Writable paths are emptyDir mounts (twinhub.scratchVolumes).
*/}}
{{- define "twinhub.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "twinhub.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Directory of a mounted secret file: /var/run/secrets/twinhub/<name>. */}}
{{- define "twinhub.secretDir" -}}
{{- printf "/var/run/secrets/twinhub/%s" (. | lower | replace "_" "-") -}}
{{- end -}}

{{- define "twinhub.secretVolumeName" -}}
{{- printf "secret-%s" (. | lower | replace "_" "-") | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The secret names one component mounts: those it lists that the release defines. A name the
release does not define (say KAFKA_SASL_PASSWORD on a PLAINTEXT cluster) is skipped.
(dict "root" $ "names" .Values.web.secretFiles) -> JSON list
*/}}
{{- define "twinhub.mountedSecretNames" -}}
{{- $out := list -}}
{{- range .names -}}
{{- if hasKey $.root.Values.secretFiles . -}}
{{- $out = append $out . -}}
{{- end -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/* A CA certificate from a Secret or a ConfigMap, as a volume source. */}}
{{- define "twinhub.caVolumeSource" -}}
{{- if .secretName -}}
secret:
  secretName: {{ .secretName }}
  defaultMode: 0444
  items:
    - key: {{ .key }}
      path: ca.crt
{{- else -}}
configMap:
  name: {{ .configMapName }}
  defaultMode: 0444
  items:
    - key: {{ .key }}
      path: ca.crt
{{- end -}}
{{- end -}}

{{- define "twinhub.hasCa" -}}
{{- if or .secretName .configMapName -}}true{{- end -}}
{{- end -}}

{{/*
The environment of every hub process: settings that are not secret as plain values, secrets
as NAME_FILE paths. (dict "root" $ "names" <component secretFiles> "extra" <list of env>)
Inline rather than a ConfigMap so the pre-install migrations hook, which runs before any
ordinary resource of the release exists, gets exactly the same environment.
*/}}
{{/*
A value as an environment variable's text. Helm reads every YAML number as a float, and
toString writes one of a million or more as "1e+06", which no launcher option or setting
reads: a whole number is written as an integer; fractions, strings and booleans as they are.
*/}}
{{- define "twinhub.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) -}}
{{- int64 . | toString -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{- define "twinhub.env" -}}
{{- $v := .root.Values -}}
- name: DJANGO_SETTINGS_MODULE
  value: hub.settings
- name: DJANGO_DEBUG
  value: "false"
- name: DJANGO_ALLOWED_HOSTS
  value: {{ join "," $v.django.allowedHosts | quote }}
- name: DJANGO_CSRF_TRUSTED_ORIGINS
  value: {{ join "," $v.django.csrfTrustedOrigins | quote }}
- name: DJANGO_BEHIND_TLS
  value: {{ $v.django.behindTls | toString | quote }}
- name: GOVERNANCE_TRUSTED_PROXY_COUNT
  value: {{ $v.django.trustedProxyCount | quote }}
- name: GOVERNANCE_AUDIT_READS_DURABLE
  value: {{ $v.django.auditReadsDurable | default false | toString | quote }}
- name: DJANGO_STATIC_ROOT
  value: {{ $v.django.staticRoot | quote }}
- name: LOG_LEVEL
  value: {{ $v.django.logLevel | quote }}
- name: LOG_FORMAT
  value: {{ $v.django.logFormat | default "json" | quote }}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ $v.kafka.bootstrapServers | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $v.kafka.securityProtocol | quote }}
{{- if include "twinhub.hasCa" $v.kafka.caCert }}
- name: KAFKA_SSL_CA_LOCATION
  value: /etc/twinhub/kafka-ca/ca.crt
{{- end }}
{{- if hasPrefix "SASL_" $v.kafka.securityProtocol }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $v.kafka.sasl.username | quote }}
{{- end }}
{{- if $v.database.sslmode }}
- name: DATABASE_SSLMODE
  value: {{ $v.database.sslmode | quote }}
{{- end }}
{{- if include "twinhub.hasCa" $v.database.caCert }}
- name: DATABASE_SSLROOTCERT
  value: /etc/twinhub/postgres-ca/ca.crt
{{- end }}
- name: METRICS_PORT
  value: {{ $v.metrics.port | quote }}
{{- range $name := (include "twinhub.mountedSecretNames" .) | fromJsonArray }}
{{- $ref := index $v.secretFiles $name }}
- name: {{ $name }}_FILE
  value: {{ printf "%s/%s" (include "twinhub.secretDir" $name) $ref.key | quote }}
{{- end }}
{{- range $k, $val := $v.django.extraEnv }}
- name: {{ $k }}
  value: {{ include "twinhub.envValue" $val | quote }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volume mounts matching twinhub.volumes. (dict "root" $ "names" … "scratch" list) */}}
{{- define "twinhub.volumeMounts" -}}
{{- $v := .root.Values -}}
- name: tmp
  mountPath: /tmp
{{- range .scratch }}
- name: {{ .name }}
  mountPath: {{ .mountPath }}
{{- end }}
{{- range $name := (include "twinhub.mountedSecretNames" .) | fromJsonArray }}
- name: {{ include "twinhub.secretVolumeName" $name }}
  mountPath: {{ include "twinhub.secretDir" $name }}
  readOnly: true
{{- end }}
{{- if include "twinhub.hasCa" $v.kafka.caCert }}
- name: kafka-ca
  mountPath: /etc/twinhub/kafka-ca
  readOnly: true
{{- end }}
{{- if include "twinhub.hasCa" $v.database.caCert }}
- name: postgres-ca
  mountPath: /etc/twinhub/postgres-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "twinhub.volumes" -}}
{{- $v := .root.Values -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- range .scratch }}
- name: {{ .name }}
  emptyDir:
    sizeLimit: {{ .sizeLimit | default "64Mi" }}
{{- end }}
{{- range $name := (include "twinhub.mountedSecretNames" .) | fromJsonArray }}
{{- $ref := index $v.secretFiles $name }}
- name: {{ include "twinhub.secretVolumeName" $name }}
  secret:
    secretName: {{ $ref.secretName }}
    # Readable by the owner (root) and the pod's fsGroup, which the process runs in.
    defaultMode: 0440
    items:
      - key: {{ $ref.key }}
        path: {{ $ref.key }}
{{- end }}
{{- if include "twinhub.hasCa" $v.kafka.caCert }}
- name: kafka-ca
  {{- include "twinhub.caVolumeSource" $v.kafka.caCert | nindent 2 }}
{{- end }}
{{- if include "twinhub.hasCa" $v.database.caCert }}
- name: postgres-ca
  {{- include "twinhub.caVolumeSource" $v.database.caCert | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Scheduling fields shared by every pod. */}}
{{- define "twinhub.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Spread a component's replicas over nodes when the scheduler can. */}}
{{- define "twinhub.spread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "twinhub.componentSelector" . | nindent 8 }}
{{- end -}}

{{- define "twinhub.podCommon" -}}
serviceAccountName: {{ include "twinhub.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "twinhub.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Checks the schema cannot express; they stop `helm template` with a clear message. */}}
{{- define "twinhub.validate" -}}
{{- range $component := list "web" "worker" "beat" "consumer" "migrations" -}}
{{- range (index $.Values $component).secretFiles -}}
{{- if not (regexMatch "^[A-Z][A-Z0-9_]*$" .) -}}
{{- fail (printf "%s.secretFiles: %q is not an environment variable name" $component .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $component := list "web" "worker" "consumer" -}}
{{- $a := (index $.Values $component).autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling: minReplicas %v is above maxReplicas %v" $component $a.minReplicas $a.maxReplicas) -}}
{{- end -}}
{{- end -}}
{{- $c := .Values.consumer -}}
{{- $most := ternary $c.autoscaling.maxReplicas $c.replicas $c.autoscaling.enabled -}}
{{- if gt (int $most) (int .Values.kafka.regionalTopicPartitions) -}}
{{- fail (printf "consumer: up to %v replicas but kafka.regionalTopicPartitions is %v; replicas beyond the partition count get no partition" $most .Values.kafka.regionalTopicPartitions) -}}
{{- end -}}
{{- $web := .Values.web -}}
{{- if gt (add (int $web.server.workersKillTimeout) 10) (int $web.terminationGracePeriodSeconds) -}}
{{- fail (printf "web.server.workersKillTimeout %v: with the 5 s preStop sleep and a margin it needs web.terminationGracePeriodSeconds of at least %v, not %v" $web.server.workersKillTimeout (add (int $web.server.workersKillTimeout) 10) $web.terminationGracePeriodSeconds) -}}
{{- end -}}
{{- range $host := .Values.django.allowedHosts -}}
{{- if has $host (list "*" "0.0.0.0") -}}
{{- fail (printf "django.allowedHosts: %q accepts any Host header" $host) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Host header for the web's probes. */}}
{{- define "twinhub.probeHost" -}}
{{- $host := .Values.web.probeHost | default (first .Values.django.allowedHosts) -}}
{{- if or (hasPrefix "." $host) (contains "*" $host) -}}
{{- fail "web.probeHost: set a literal host name (django.allowedHosts starts with a wildcard)" -}}
{{- end -}}
{{- $host -}}
{{- end -}}

{{/* NetworkPolicy egress rule to a service: (dict "peers" … "ports" …) */}}
{{- define "twinhub.egressRule" -}}
- ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
  {{- with .peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- define "twinhub.dnsEgressRule" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns.peers | nindent 4 }}
  ports:
    {{- range .Values.networkPolicy.dns.ports }}
    - protocol: UDP
      port: {{ . }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}
