"""The AWS Lambda REST API (2015-03-31) over a ``LambdaService``."""
