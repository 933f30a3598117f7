"""``edgelab replay`` and ``edgelab generate-log``: request logs (CloudFront standard logs, HAR) read, generated,
and replayed against a running stack."""
