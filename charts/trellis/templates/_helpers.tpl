{{/* Labels every object of the release carries. */}}
{{- define "trellis.labels" -}}
app.kubernetes.io/part-of: trellis
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* image reference: repository:tag, the tag defaulting to global.imageTag, then appVersion. */}}
{{- define "trellis.image" -}}
{{- $tag := .image.tag | default .root.Values.global.imageTag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}

{{/* The controller Service's in-cluster DNS name (also the TLS name agents verify). */}}
{{- define "trellis.controllerHost" -}}
trellis-controller.{{ .Release.Namespace }}.svc
{{- end -}}

{{- define "trellis.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}
