"""The `edc` runtime profile: a Connector as an Eclipse Tractus-X EDC control plane and data
plane (pure, except `vault`'s client in the parent package)."""
