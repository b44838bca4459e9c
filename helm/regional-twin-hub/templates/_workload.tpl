{{/*
A Deployment for a process without an HTTP port (worker, beat, consumer).
(dict "root" $ "component" "worker" "values" .Values.worker "command" (list …)
      "replicas" <int or nil when an HPA owns the count> "strategy" "RollingUpdate|Recreate"
      "env" (list …) "scratch" (list …))
*/}}
{{- define "twinhub.workload" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $ctx := dict "root" $root "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "twinhub.fullname" $root }}-{{ .component }}
  labels:
    {{- include "twinhub.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "twinhub.componentSelector" $ctx | nindent 6 }}
  strategy:
    type: {{ .strategy }}
    {{- if eq .strategy "RollingUpdate" }}
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "twinhub.componentLabels" $ctx | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "twinhub.podCommon" $root | nindent 6 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- if ne .component "beat" }}
      {{- include "twinhub.spread" $ctx | nindent 6 }}
      {{- end }}
      {{- with include "twinhub.scheduling" $v }}{{ . | nindent 6 }}{{ end }}
      containers:
        - name: {{ .component }}
          image: {{ include "twinhub.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- toYaml .command | nindent 12 }}
          env:
            {{- include "twinhub.env" (dict "root" $root "names" $v.secretFiles "extra" .env) | nindent 12 }}
          {{- if .metrics }}
          ports:
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "twinhub.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "twinhub.volumeMounts" (dict "root" $root "names" $v.secretFiles "scratch" .scratch) | nindent 12 }}
      volumes:
        {{- include "twinhub.volumes" (dict "root" $root "names" $v.secretFiles "scratch" .scratch) | nindent 8 }}
{{- end -}}
