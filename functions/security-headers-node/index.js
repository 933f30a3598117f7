'use strict';
// Add security headers to every response (attach to origin-response, or to viewer-response).
// The Node.js twin of ../security-headers: the shape of AWS's own Lambda@Edge example ("Adding HTTP security
// headers"), CommonJS and callback style, as most published Lambda@Edge code is.

const SECURITY_HEADERS = {
  'strict-transport-security': ['Strict-Transport-Security', 'max-age=63072000; includeSubDomains; preload'],
  'content-security-policy': ['Content-Security-Policy', "default-src 'self'; img-src 'self' data:; object-src 'none'"],
  'x-content-type-options': ['X-Content-Type-Options', 'nosniff'],
  'x-frame-options': ['X-Frame-Options', 'DENY'],
  'referrer-policy': ['Referrer-Policy', 'strict-origin-when-cross-origin'],
  'permissions-policy': ['Permissions-Policy', 'camera=(), microphone=(), geolocation=()'],
};

exports.handler = (event, context, callback) => {
  const response = event.Records[0].cf.response;
  const headers = response.headers;
  for (const [name, [key, value]] of Object.entries(SECURITY_HEADERS)) {
    headers[name] = [{ key, value }];
  }
  callback(null, response);
};
