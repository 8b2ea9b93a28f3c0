"""connector-operator: a Kopf operator that runs dataspace Connectors on Kubernetes."""
