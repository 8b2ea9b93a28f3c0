{{/* The operator's rules, as a ClusterRole or a Role per watched namespace (deploy/rbac.yaml). */}}
{{- define "connector-operator.rules" -}}
# The Connectors: watched, and their status written.
- apiGroups: [dataspace.dev]
  resources: [connectors]
  verbs: [list, watch]
- apiGroups: [dataspace.dev]
  resources: [connectors/status]
  verbs: [patch]
# What a Connector becomes; written with server-side apply (create or patch), read from the
# operator's watches; a get only before creating one, to not take over an object of the
# child's name that is someone else's.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
# The edc profile's Ingress (when an ingress class is configured), written like the above.
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch]
# Secrets: the operator's own (inline credentials, and the key of config hashes in its own
# namespace) and the users' referenced ones, whose changes roll the pod. Others are watched as
# metadata only; a referenced one is read (get) when its version changes.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
# ReplicaSets and pods are only counted (metadata and phase), to know when a stop has
# finished (a pod counts when its ReplicaSet belongs to the Connector's Deployment), and
# only on a cluster whose Deployments do not count their terminating pods (before Kubernetes
# 1.35): elsewhere the operator never lists or watches them. Keep them: it finds out which
# kind of cluster it runs on only from the Deployments it reads.
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
