"""The distribution as configured: CloudFront's DistributionConfig, behaviors, cache/origin-request policies,
and the local settings TOML."""
