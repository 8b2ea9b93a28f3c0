"""The `edc` runtime profile: a Connector as an Eclipse Tractus-X EDC control plane and data
plane. No I/O here (the vault's client is `connector_operator.vault`); `keys` draws randomness."""
