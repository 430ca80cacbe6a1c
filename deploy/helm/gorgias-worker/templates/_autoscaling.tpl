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
