"""CloudFront Functions (``cloudfront-js-1.0`` / ``cloudfront-js-2.0``) and CloudFront KeyValueStore.

The engine and the semantics (pure where possible), the stores, and the POP's runner; the pipeline runs it through
``edge.cdn.steps.cloudfront_functions`` and the control port serves the APIs (``edge.control.cloudfront_api``).

- ``associations``  ``FunctionAssociations`` and CloudFront's rules for them (the distribution loader's check);
- ``runner``  per POP process: associations resolved by name to LIVE stages (a catalog refreshed from the database),
  engines prepared in threads, results applied, origin changes, Server-Timing, logs;
- ``checker``  the syntax gate per runtime (tree-sitter-javascript), CloudFront's (njs's) error texts;
- ``prelude.js`` / ``engine``  QuickJS (quickjs-ng) in the POP process, one context per function, the runtime
  surface (crypto, querystring, Buffer, console, the ``cloudfront`` module), time/memory limits, compute
  utilization. Engine choice and its measurements: ``engine``'s docstring. Figures (this 2-core machine,
  medians): quickjs-ng 9 µs per call vs mini-racer (V8) 164 µs vs the njs CLI 2,781 µs;
- ``event``  the event object from ``EdgeRequest``/``EdgeResponse`` and results applied back, with validation;
- ``origin``  ``cf.updateRequestOrigin`` / ``selectRequestOriginById`` / ``createRequestOriginGroup`` as data;
- ``errors``  what the viewer gets (503 FunctionExecutionError, 502 FunctionValidationError …);
- ``kvs``  KeyValueStore: SQLite in the state dir, ETag/IfMatch, import, per-process snapshots;
- ``functions``  the function store (DEVELOPMENT/LIVE, ETags, AWS's API errors) and TestFunction.
"""
