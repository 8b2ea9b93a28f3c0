"""The gateway: the hosted platform's Connectors REST API, served over Connector resources."""
