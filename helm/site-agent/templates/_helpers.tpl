{{- define "site.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "site.fullname" -}}
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

{{- define "site.selectorLabels" -}}
app.kubernetes.io/name: {{ include "site.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "site.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "site.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: regional-twin-hub
twinhub.io/site: {{ .Values.site.code | quote }}
{{- end -}}

{{/* The one pod of a site: the agent and its DE-ID worker. */}}
{{- define "site.podSelector" -}}
{{ include "site.selectorLabels" . }}
app.kubernetes.io/component: site
{{- end -}}

{{- define "site.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "site.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "site.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "site.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "site.secretDir" -}}
{{- printf "/var/run/secrets/twinhub/%s" (. | lower | replace "_" "-") -}}
{{- end -}}

{{- define "site.secretVolumeName" -}}
{{- printf "secret-%s" (. | lower | replace "_" "-") | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Names a container lists that the release defines, as a JSON list. */}}
{{- define "site.mountedSecretNames" -}}
{{- $out := list -}}
{{- range .names -}}
{{- if hasKey $.root.Values.secretFiles . -}}
{{- $out = append $out . -}}
{{- end -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{- define "site.allSecretNames" -}}
{{- $all := concat .Values.agent.secretFiles .Values.deid.secretFiles | uniq -}}
{{- include "site.mountedSecretNames" (dict "root" . "names" $all) -}}
{{- end -}}

{{- define "site.hasCa" -}}
{{- if or .secretName .configMapName -}}true{{- end -}}
{{- end -}}

{{/* Environment both containers share: Kafka client settings, the key store, secrets. */}}
{{- define "site.env" -}}
{{- $v := .root.Values -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ $v.kafka.bootstrapServers | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $v.kafka.securityProtocol | quote }}
{{- if include "site.hasCa" $v.kafka.caCert }}
- name: KAFKA_SSL_CA_LOCATION
  value: /etc/twinhub/kafka-ca/ca.crt
{{- end }}
{{- if hasPrefix "SASL_" $v.kafka.securityProtocol }}
{{- $user := index $v.kafka.sasl .process }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $user.username | quote }}
- name: KAFKA_SASL_PASSWORD_FILE
  value: {{ printf "/var/run/secrets/twinhub/kafka-sasl-password/%s" $user.passwordSecret.key | quote }}
{{- end }}
- name: SITE_AGENT_DATA_DIR
  value: /var/lib/site-agent
# One key store (SQLite, WAL) for both: the agent seals PHI, the worker
# opens it and sees an erasure within a second.
- name: DEID_KEYSTORE
  value: /var/lib/site-agent/keystore.sqlite3
- name: LOG_LEVEL
  value: {{ $v.logLevel | quote }}
- name: LOG_FORMAT
  value: {{ $v.logFormat | default "json" | quote }}
{{- range $name := (include "site.mountedSecretNames" .) | fromJsonArray }}
{{- $ref := index $v.secretFiles $name }}
- name: {{ $name }}_FILE
  value: {{ printf "%s/%s" (include "site.secretDir" $name) $ref.key | quote }}
{{- end }}
{{- end -}}

{{- define "site.secretMounts" -}}
{{- range $name := (include "site.mountedSecretNames" .) | fromJsonArray }}
- name: {{ include "site.secretVolumeName" $name }}
  mountPath: {{ include "site.secretDir" $name }}
  readOnly: true
{{- end }}
{{- if hasPrefix "SASL_" .root.Values.kafka.securityProtocol }}
- name: secret-kafka-sasl-{{ .process }}
  mountPath: /var/run/secrets/twinhub/kafka-sasl-password
  readOnly: true
{{- end }}
{{- if include "site.hasCa" .root.Values.kafka.caCert }}
- name: kafka-ca
  mountPath: /etc/twinhub/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "site.dnsEgressRule" -}}
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

{{- define "site.validate" -}}
{{- range $c := list "agent" "deid" -}}
{{- range (index $.Values $c).secretFiles -}}
{{- if not (regexMatch "^[A-Z][A-Z0-9_]*$" .) -}}
{{- fail (printf "%s.secretFiles: %q is not an environment variable name" $c .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq (int .Values.metrics.agentPort) (int .Values.metrics.deidPort) -}}
{{- fail "metrics.agentPort and metrics.deidPort are ports of one pod: they must differ" -}}
{{- end -}}
{{- if has "DEID_SITE_SIGNING_KEY" .Values.agent.secretFiles -}}
{{- fail "agent.secretFiles: the site agent never signs; DEID_SITE_SIGNING_KEY is the DE-ID worker's alone" -}}
{{- end -}}
{{- if and .Values.agent.fhir.pollTokenEnv (not (hasKey .Values.secretFiles .Values.agent.fhir.pollTokenEnv)) -}}
{{- fail (printf "agent.fhir.pollTokenEnv is %s: define secretFiles.%s" .Values.agent.fhir.pollTokenEnv .Values.agent.fhir.pollTokenEnv) -}}
{{- end -}}
{{- end -}}
