"""Stand-ins for what cannot run here: Elasticsearch's Bulk API and a Fluentd forward-protocol receiver."""
