'use strict';
// HTTP Basic authentication in front of the whole distribution (attach to viewer-request).
// The Node.js twin of ../basic-auth. Lambda@Edge functions cannot have environment variables, so the
// credentials live in the code (in a real deployment: a hash, or a config file bundled with the package).

const crypto = require('crypto');

const USERNAME = 'edge';
const PASSWORD = 'lab';
const REALM = 'edgelab';
const EXPECTED = Buffer.from(`Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`);

function matches(supplied) {
  const got = Buffer.from(supplied);
  return got.length === EXPECTED.length && crypto.timingSafeEqual(got, EXPECTED);
}

exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  const auth = request.headers.authorization;
  if (auth && matches(auth[0].value)) return request;
  return {
    status: 401,
    statusDescription: 'Unauthorized',
    headers: {
      'www-authenticate': [{ key: 'WWW-Authenticate', value: `Basic realm="${REALM}", charset="UTF-8"` }],
      'content-type': [{ key: 'Content-Type', value: 'text/plain; charset=utf-8' }],
    },
    body: 'Unauthorized\n',
  };
};
