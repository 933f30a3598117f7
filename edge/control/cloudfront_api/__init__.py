"""The CloudFront API of the control port (``cloudfront`` 2020-05-31 and ``cloudfront-keyvaluestore`` 2022-07-26):
today CloudFront Functions and KeyValueStore (``app``); the rest of CloudFront's API (distributions,
invalidations) is meant to plug in beside it as more routes of ``app.make_cloudfront_app``."""
