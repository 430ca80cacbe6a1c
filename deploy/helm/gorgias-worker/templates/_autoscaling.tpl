{{/* Records of lag per replica for one destination (autoscaling.lagThresholds, else lagThreshold). */}}
{{- define "gorgias-worker.lagThreshold" -}}
{{- $a := .root.Values.autoscaling -}}
{{- get (default dict $a.lagThresholds) .name | default $a.lagThreshold -}}
{{- end -}}

{{/* The scale-up/scale-down behaviour shared by KEDA's HPA and the plain HPA. */}}
{{- define "gorgias-worker.scalingBehavior" -}}
# Every change of replica count is a consumer-group rebalance: scale up quickly, down slowly.
scaleUp:
  stabilizationWindowSeconds: 0
  policies:
    - type: Pods
      value: 4
      periodSeconds: 60
scaleDown:
  stabilizationWindowSeconds: 300
  policies:
    - type: Pods
      value: 1
      periodSeconds: 120
{{- end -}}

{{/*
Most replicas the accounts' budgets keep busy, plus one spare (worker/gorgias/share.py useful_replicas):
ceil(sum over the config's accounts of (requests - headroom) / per_seconds, divided by the 33.7 calls/s one
replica sustains against Gorgias) + 1. An account is a domain and auth type; its bucket is rate_limit.requests,
else 40 (API key) or 80 (OAuth). Accounts without pacing (rate_limit.enabled: false) count nothing.
*/}}
{{- define "gorgias-worker.budgetReplicas" -}}
{{- $config := .Values.config -}}
{{- $named := default dict $config.credentials -}}
{{- $budgets := dict -}}
{{- range $config.destinations -}}
{{- $c := .credential -}}
{{- if kindIs "string" $c -}}{{- $c = get $named $c | default dict -}}{{- end -}}
{{- $auth := default "basic" $c.auth -}}
{{- $key := printf "%s/%s" (toString $c.domain) (ternary "oauth" $auth (eq $auth "oauth_app")) -}}
{{- $rl := default dict $c.rate_limit -}}
{{- if and (not (hasKey $budgets $key)) (or (not (hasKey $rl "enabled")) $rl.enabled) -}}
{{- $size := default (ternary 40 80 (eq $auth "basic")) $rl.requests -}}
{{- $headroom := ternary $rl.headroom 2 (hasKey $rl "headroom") -}}
{{- $_ := set $budgets $key (divf (max 1 (sub $size $headroom)) (default 20 $rl.per_seconds)) -}}
{{- end -}}
{{- end -}}
{{- $total := 0.0 -}}
{{- range $budgets -}}{{- $total = addf $total . -}}{{- end -}}
{{- add1 (max 1 (ceil (divf $total 33.7))) -}}
{{- end -}}

{{/* The autoscaler's cap: autoscaling.maxReplicas, else the budgets' bound (never below minReplicas). */}}
{{- define "gorgias-worker.maxReplicas" -}}
{{- $a := .Values.autoscaling -}}
{{- if $a.maxReplicas -}}
{{- $a.maxReplicas -}}
{{- else -}}
{{- max $a.minReplicas (include "gorgias-worker.budgetReplicas" . | int) -}}
{{- end -}}
{{- end -}}
