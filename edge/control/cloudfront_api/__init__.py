"""The CloudFront API of the control port (``cloudfront`` 2020-05-31 and ``cloudfront-keyvaluestore`` 2022-07-26):
CloudFront Functions and KeyValueStore, the stack's distribution (``distributions``), invalidations
(``invalidations``) and cache / origin request policies (``policies``), served by ``app.make_cloudfront_app``."""
