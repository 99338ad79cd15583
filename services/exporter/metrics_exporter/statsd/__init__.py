"""The statsd source: parse lines, receive UDP packets, and ingest them into the series store."""
