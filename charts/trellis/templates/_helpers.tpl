{{/* Names and labels shared by every template. */}}

{{- define "trellis.fullname" -}}
{{- if contains "trellis" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-trellis" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "trellis.labels" -}}
app.kubernetes.io/part-of: trellis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "trellis.operator.name" -}}
app.kubernetes.io/name: trellis-operator
{{- end -}}

{{- define "trellis.api.name" -}}
app.kubernetes.io/name: trellis-api
{{- end -}}

{{/* The operator's pods. */}}
{{- define "trellis.operator.selector" -}}
app.kubernetes.io/name: trellis-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The API's pods. The operator's project NetworkPolicies admit the gateway and the airlock by
     app.kubernetes.io/name=trellis-api, so that label is the contract with them. */}}
{{- define "trellis.api.selector" -}}
app.kubernetes.io/name: trellis-api
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* An image reference: [image.registry/]repository, then @digest when one is pinned (the tag is
     then ignored), else :tag (default: the chart's appVersion, the Trellis version). */}}
{{- define "trellis.image" -}}
{{- $repository := .image.repository -}}
{{- with .root.Values.image.registry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Whether the API keeps its state in PostgreSQL. */}}
{{- define "trellis.api.postgres" -}}
{{- if or .Values.database.url .Values.database.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The SMTP server's port: notifications.smtp.port, or the usual one for its TLS mode. */}}
{{- define "trellis.smtp.port" -}}
{{- $smtp := .Values.notifications.smtp -}}
{{- $smtp.port | default (get (dict "none" 25 "starttls" 587 "tls" 465) $smtp.tls) | int -}}
{{- end -}}

{{/* The restricted security context every Trellis container runs with. */}}
{{- define "trellis.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "trellis.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The S3 store's port: the endpoint's, or the usual one for its scheme (Amazon S3: 443). */}}
{{/* The port of the OpenID provider (oidc.issuer), which the API fetches keys from. */}}
{{- define "trellis.oidc.port" -}}
{{- $url := urlParse .Values.oidc.issuer -}}
{{- regexFind ":[0-9]+$" $url.host | trimPrefix ":" | default (ternary "80" "443" (eq $url.scheme "http")) | int -}}
{{- end }}

{{- define "trellis.s3.port" -}}
{{- with .Values.airlock.s3.endpoint -}}
{{- $url := urlParse . -}}
{{- regexFind ":[0-9]+$" $url.host | trimPrefix ":" | default (ternary "80" "443" (eq $url.scheme "http")) | int -}}
{{- else -}}
443
{{- end -}}
{{- end }}
