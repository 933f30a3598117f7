"""The CloudWatch Logs API (JSON 1.1, ``Logs_20140328``) over edgelab's per-region log store."""
