// The CloudFront Functions runtime surface, evaluated once in each function's own QuickJS context.
//
// It is edgelab's code, not the user's: it may use any QuickJS feature. It installs what the published
// allow-lists give a function (require('crypto'|'querystring'|'buffer'), Buffer/TextEncoder/TextDecoder/atob/btoa
// on 2.0, console.log, the `cloudfront` module, Date frozen at the start time), removes every global the
// allow-lists do not name, and then freezes every intrinsic so nothing a call does can leak into the next one
// (CloudFront's own engine gives each request a fresh VM; see engine.py for why edgelab freezes instead).
//
// Sources: functions-javascript-runtime-10, functions-javascript-runtime-20, functions-custom-methods,
// helper-functions-origin-modification, general-helper-methods, cloudfront-function-restrictions (AWS Developer
// Guide, CloudFront). Python drives it through the object returned at the end (see engine.py).
(function (RUNTIME) {
  'use strict';
  var G = globalThis;
  var V2 = RUNTIME === 'cloudfront-js-2.0';
  var RealDate = Date, RealReflect = Reflect, RealJSON = JSON, RealPromise = Promise;
  var RealDefineProperty = Object.defineProperty, RealSetPrototypeOf = Object.setPrototypeOf;
  var getProto = Object.getPrototypeOf, objectKeys = Object.keys, isArray = Array.isArray;
  var ObjectProto = Object.prototype, ArrayProto = Array.prototype, lookupGetter = Object.prototype.__lookupGetter__;
  var hasOwn = Object.prototype.hasOwnProperty;
  var LOG_LIMIT = 10240; // cloudfront-function-restrictions: function logs are truncated at 10 KB

  // ---------------------------------------------------------------- per-call state (reset by invoke)
  var startTime = 0, logs = [], logBytes = 0, logTruncated = false, originOps = [], eventType = '';
  var edgeLocation = {}, kvsData = null, kvsMeta = null, kvsArnId = '';
  // Whether the call read something that differs between two requests whose events are otherwise the same: the
  // time (a Date read), Math.random, the event's requestId. A call that read none of them, logged nothing and
  // returned a delta is a function of its event's other fields, the store's snapshot and cf.edgeLocation alone
  // (each call runs the top-level code again on frozen intrinsics: nothing survives a call), which is what lets
  // engine.py answer the same event again from memory (FunctionEngine, "Repeated events").
  var varied = false;

  // ---------------------------------------------------------------- bytes <-> strings
  function utf8Encode(s) {
    s = String(s);
    var out = [], i, c, c2;
    for (i = 0; i < s.length; i++) {
      c = s.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
        c2 = s.charCodeAt(i + 1);
        if (c2 >= 0xdc00 && c2 < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00); i++; }
        else c = 0xfffd;
      } else if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return out;
  }
  function utf8Decode(b, start, end) {
    var s = '', i = start || 0, e = end === undefined ? b.length : end, c, n, cp, k;
    while (i < e) {
      c = b[i++];
      if (c < 0x80) { s += String.fromCharCode(c); continue; }
      n = c >= 0xf0 && c < 0xf8 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
      if (n < 0 || i + n > e) { s += '\ufffd'; continue; }
      cp = c & (0x3f >> n);
      for (k = 0; k < n; k++) {
        if ((b[i + k] & 0xc0) !== 0x80) { cp = -1; break; }
        cp = (cp << 6) | (b[i + k] & 63);
      }
      if (cp < 0) { s += '\ufffd'; continue; }
      i += n;
      s += String.fromCodePoint(cp > 0x10ffff ? 0xfffd : cp);
    }
    return s;
  }
  var B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  function b64Encode(b, url) {
    var s = '', i, n = b.length, x;
    for (i = 0; i + 2 < n; i += 3) {
      x = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
      s += B64[x >> 18] + B64[(x >> 12) & 63] + B64[(x >> 6) & 63] + B64[x & 63];
    }
    if (n - i === 1) { x = b[i] << 16; s += B64[x >> 18] + B64[(x >> 12) & 63] + (url ? '' : '=='); }
    else if (n - i === 2) {
      x = (b[i] << 16) | (b[i + 1] << 8);
      s += B64[x >> 18] + B64[(x >> 12) & 63] + B64[(x >> 6) & 63] + (url ? '' : '=');
    }
    return url ? s.replace(/\+/g, '-').replace(/\//g, '_') : s;
  }
  function b64Decode(s, strict) {
    s = String(s).replace(/[\t\n\f\r ]/g, '').replace(/-/g, '+').replace(/_/g, '/');
    var out = [], acc = 0, bits = 0, i, v, pad = s.indexOf('=');
    if (pad >= 0) {
      if (strict && !/^=*$/.test(s.slice(pad))) throw new TypeError('invalid base64 string');
      s = s.slice(0, pad);
    }
    for (i = 0; i < s.length; i++) {
      v = B64.indexOf(s[i]);
      if (v < 0) { if (strict) throw new TypeError('invalid base64 string'); break; }
      acc = (acc << 6) | v; bits += 6;
      if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 255); }
    }
    return out;
  }
  function hexEncode(b) {
    var s = '', i;
    for (i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
    return s;
  }
  function hexDecode(s) {
    var out = [], i, v;
    s = String(s);
    for (i = 0; i + 1 < s.length; i += 2) {
      v = parseInt(s.substr(i, 2), 16);
      if (v !== v) break;
      out.push(v);
    }
    return out;
  }
  function byteString(b) { var s = '', i; for (i = 0; i < b.length; i++) s += String.fromCharCode(b[i]); return s; }

  // ---------------------------------------------------------------- Buffer (2.0): a Uint8Array subclass
  var ENCODINGS = { utf8: 1, 'utf-8': 1, hex: 1, base64: 1, base64url: 1 };
  function normEnc(enc) {
    if (enc === undefined || enc === null) return 'utf8';
    var e = String(enc).toLowerCase();
    if (!hasOwn.call(ENCODINGS, e)) throw new TypeError('Unknown encoding: ' + enc);
    return e === 'utf-8' ? 'utf8' : e;
  }
  function encodeString(s, enc) {
    enc = normEnc(enc);
    if (enc === 'hex') return hexDecode(s);
    if (enc === 'base64' || enc === 'base64url') return b64Decode(s, false);
    return utf8Encode(s);
  }
  class Buffer extends Uint8Array {
    static from(v, encOrOffset, length) {
      if (typeof v === 'string') return Buffer._of(encodeString(v, encOrOffset));
      if (v instanceof ArrayBuffer) {
        var off = encOrOffset === undefined ? 0 : encOrOffset >>> 0;
        return new Buffer(v, off, length === undefined ? v.byteLength - off : length >>> 0);
      }
      if (ArrayBuffer.isView(v)) return Buffer._of(Array.prototype.slice.call(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)));
      if (Array.isArray(v)) return Buffer._of(v.map(function (x) { return x & 255; }));
      if (v && v.type === 'Buffer' && Array.isArray(v.data)) return Buffer._of(v.data);
      throw new TypeError('The first argument must be of type string, Buffer, ArrayBuffer, Array, or Array-like Object');
    }
    static _of(arr) { var b = new Buffer(arr.length); b.set(arr); return b; }
    static alloc(n, fill, enc) { var b = new Buffer(n >>> 0); if (fill !== undefined) b.fill(fill, 0, b.length, enc); return b; }
    static allocUnsafe(n) { return new Buffer(n >>> 0); }
    static allocUnsafeSlow(n) { return new Buffer(n >>> 0); }
    static byteLength(v, enc) {
      if (typeof v === 'string') return encodeString(v, enc).length;
      if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v.byteLength;
      throw new TypeError('The "string" argument must be of type string or an instance of Buffer or ArrayBuffer');
    }
    static isBuffer(v) { return v instanceof Buffer; }
    static isEncoding(e) { return typeof e === 'string' && hasOwn.call(ENCODINGS, e.toLowerCase()); }
    static compare(a, b) {
      var n = Math.min(a.length, b.length), i;
      for (i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
      return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
    }
    static concat(list, total) {
      var n = 0, i, b, off = 0;
      for (i = 0; i < list.length; i++) n += list[i].length;
      if (total !== undefined) n = total >>> 0;
      b = Buffer.alloc(n);
      for (i = 0; i < list.length && off < n; i++) {
        b.set(list[i].length + off > n ? list[i].subarray(0, n - off) : list[i], off);
        off += list[i].length;
      }
      return b;
    }
    toString(enc, start, end) {
      enc = normEnc(enc);
      var s = start === undefined ? 0 : Math.max(0, start | 0), e = end === undefined ? this.length : Math.min(this.length, end | 0);
      var v = this.subarray(s, Math.max(s, e));
      if (enc === 'hex') return hexEncode(v);
      if (enc === 'base64') return b64Encode(v, false);
      if (enc === 'base64url') return b64Encode(v, true);
      return utf8Decode(v);
    }
    toJSON() { return { type: 'Buffer', data: Array.prototype.slice.call(this) }; }
    equals(o) { return Buffer.compare(this, o) === 0; }
    compare(o) { return Buffer.compare(this, o); }
    subarray(s, e) { var u = Uint8Array.prototype.subarray.call(this, s, e); return new Buffer(u.buffer, u.byteOffset, u.length); }
    slice(s, e) { return this.subarray(s, e); }
    write(str, offset, length, enc) {
      if (typeof offset === 'string') { enc = offset; offset = 0; length = undefined; }
      else if (typeof length === 'string') { enc = length; length = undefined; }
      offset = offset === undefined ? 0 : offset >>> 0;
      var bytes = encodeString(str, enc), n = Math.min(bytes.length, this.length - offset, length === undefined ? Infinity : length);
      for (var i = 0; i < n; i++) this[offset + i] = bytes[i];
      return n;
    }
    fill(v, start, end, enc) {
      if (typeof start === 'string') { enc = start; start = 0; end = this.length; }
      var s = start === undefined ? 0 : start >>> 0, e = end === undefined ? this.length : end >>> 0;
      var bytes = typeof v === 'string' ? encodeString(v, enc) : ArrayBuffer.isView(v) ? v : [v & 255];
      if (bytes.length === 0) bytes = [0];
      for (var i = s, k = 0; i < e; i++, k++) this[i] = bytes[k % bytes.length];
      return this;
    }
    copy(target, tStart, sStart, sEnd) {
      tStart = tStart >>> 0; sStart = sStart >>> 0; sEnd = sEnd === undefined ? this.length : sEnd >>> 0;
      var n = Math.max(0, Math.min(sEnd - sStart, target.length - tStart));
      target.set(this.subarray(sStart, sStart + n), tStart);
      return n;
    }
    indexOf(v, from, enc) {
      if (typeof v === 'number') return Uint8Array.prototype.indexOf.call(this, v & 255, from);
      var needle = typeof v === 'string' ? encodeString(v, enc) : v, i, k;
      for (i = from === undefined ? 0 : from >>> 0; i + needle.length <= this.length; i++) {
        for (k = 0; k < needle.length && this[i + k] === needle[k]; k++);
        if (k === needle.length) return i;
      }
      return -1;
    }
    includes(v, from, enc) { return this.indexOf(v, from, enc) !== -1; }
    _dv() { return new DataView(this.buffer, this.byteOffset, this.byteLength); }
    _swap(n) {
      if (this.length % n) throw new RangeError('Buffer size must be a multiple of ' + n * 8 + '-bits');
      for (var i = 0; i < this.length; i += n) for (var a = i, b = i + n - 1; a < b; a++, b--) { var t = this[a]; this[a] = this[b]; this[b] = t; }
      return this;
    }
    swap16() { return this._swap(2); }
    swap32() { return this._swap(4); }
    swap64() { return this._swap(8); }
  }
  // read/write<Type><LE|BE>: Node's names over DataView's getters and setters.
  [['UInt8', 'Uint8', 1], ['Int8', 'Int8', 1], ['UInt16', 'Uint16', 2], ['Int16', 'Int16', 2],
   ['UInt32', 'Uint32', 4], ['Int32', 'Int32', 4], ['Float', 'Float32', 4], ['Double', 'Float64', 8]].forEach(function (t) {
    var name = t[0], dv = t[1], size = t[2];
    (size === 1 ? [''] : ['LE', 'BE']).forEach(function (end) {
      var little = end === 'LE';
      function check(buf, off) {
        if (off < 0 || off + size > buf.length || off !== Math.floor(off)) throw new RangeError('The value of "offset" is out of range.');
      }
      Buffer.prototype['read' + name + end] = function (off) {
        off = off === undefined ? 0 : off; check(this, off);
        return this._dv()['get' + dv](off, little);
      };
      Buffer.prototype['write' + name + end] = function (v, off) {
        off = off === undefined ? 0 : off; check(this, off);
        this._dv()['set' + dv](off, +v, little);
        return off + size;
      };
      if (name.indexOf('UInt') === 0) {
        Buffer.prototype['readUint' + name.slice(4) + end] = Buffer.prototype['read' + name + end];
        Buffer.prototype['writeUint' + name.slice(4) + end] = Buffer.prototype['write' + name + end];
      }
    });
  });
  function toBytes(v) {
    if (typeof v === 'string') return utf8Encode(v);
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (v instanceof ArrayBuffer) return new Uint8Array(v);
    throw new TypeError('data must be a string, a Buffer or a TypedArray');
  }

  // ---------------------------------------------------------------- crypto: md5 / sha1 / sha256 and HMAC
  function words32(bytes, little) {
    var n = bytes.length, total = ((n + 8) >> 6) + 1, w = new Array(total * 16).fill(0), i;
    for (i = 0; i < n; i++) w[i >> 2] |= bytes[i] << (little ? (i % 4) * 8 : 24 - (i % 4) * 8);
    w[n >> 2] |= 0x80 << (little ? (n % 4) * 8 : 24 - (n % 4) * 8);
    var bits = n * 8;
    if (little) { w[total * 16 - 2] = bits >>> 0; w[total * 16 - 1] = Math.floor(bits / 4294967296); }
    else { w[total * 16 - 1] = bits >>> 0; w[total * 16 - 2] = Math.floor(bits / 4294967296); }
    return w;
  }
  function wordsToBytes(h, little) {
    var out = [], i;
    for (i = 0; i < h.length; i++) {
      if (little) out.push(h[i] & 255, (h[i] >>> 8) & 255, (h[i] >>> 16) & 255, (h[i] >>> 24) & 255);
      else out.push((h[i] >>> 24) & 255, (h[i] >>> 16) & 255, (h[i] >>> 8) & 255, h[i] & 255);
    }
    return out;
  }
  function rotl(x, n) { return (x << n) | (x >>> (32 - n)); }
  var MD5_S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21], MD5_K = [];
  for (var mi = 0; mi < 64; mi++) MD5_K[mi] = Math.floor(Math.abs(Math.sin(mi + 1)) * 4294967296) | 0;
  function md5(bytes) {
    var w = words32(bytes, true), a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476, o, i;
    for (o = 0; o < w.length; o += 16) {
      var a = a0, b = b0, c = c0, d = d0, f, g, t;
      for (i = 0; i < 64; i++) {
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        t = d; d = c; c = b;
        b = (b + rotl((a + f + MD5_K[i] + w[o + g]) | 0, MD5_S[(i >> 4) * 4 + (i % 4)])) | 0;
        a = t;
      }
      a0 = (a0 + a) | 0; b0 = (b0 + b) | 0; c0 = (c0 + c) | 0; d0 = (d0 + d) | 0;
    }
    return wordsToBytes([a0, b0, c0, d0], true);
  }
  function sha1(bytes) {
    var w = words32(bytes, false), h = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0], x = new Array(80), o, i;
    for (o = 0; o < w.length; o += 16) {
      for (i = 0; i < 80; i++) x[i] = i < 16 ? w[o + i] : rotl(x[i - 3] ^ x[i - 8] ^ x[i - 14] ^ x[i - 16], 1);
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f, k, t;
      for (i = 0; i < 80; i++) {
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc | 0; }
        else { f = b ^ c ^ d; k = 0xca62c1d6 | 0; }
        t = (rotl(a, 5) + f + e + k + x[i]) | 0; e = d; d = c; c = rotl(b, 30); b = a; a = t;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0; h[4] = (h[4] + e) | 0;
    }
    return wordsToBytes(h, false);
  }
  var SHA256_K = [], SHA256_H0 = [];
  (function () {
    var primes = [], n = 2, k;
    while (primes.length < 64) { for (k = 2; k * k <= n && n % k; k++); if (k * k > n) primes.push(n); n++; }
    for (k = 0; k < 64; k++) SHA256_K[k] = Math.floor((Math.cbrt(primes[k]) % 1) * 4294967296) | 0;
    for (k = 0; k < 8; k++) SHA256_H0[k] = Math.floor((Math.sqrt(primes[k]) % 1) * 4294967296) | 0;
  })();
  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }
  function sha256(bytes) {
    var w = words32(bytes, false), h = SHA256_H0.slice(), x = new Array(64), o, i;
    for (o = 0; o < w.length; o += 16) {
      for (i = 0; i < 64; i++) {
        if (i < 16) x[i] = w[o + i];
        else {
          var s0 = rotr(x[i - 15], 7) ^ rotr(x[i - 15], 18) ^ (x[i - 15] >>> 3);
          var s1 = rotr(x[i - 2], 17) ^ rotr(x[i - 2], 19) ^ (x[i - 2] >>> 10);
          x[i] = (x[i - 16] + s0 + x[i - 7] + s1) | 0;
        }
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
      for (i = 0; i < 64; i++) {
        var t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + x[i]) | 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
    }
    return wordsToBytes(h, false);
  }
  var HASHES = { md5: md5, sha1: sha1, sha256: sha256 };
  function concatBytes(chunks) {
    var out = [], i, k;
    for (i = 0; i < chunks.length; i++) for (k = 0; k < chunks[i].length; k++) out.push(chunks[i][k]);
    return out;
  }
  function digestOut(bytes, enc) {
    if (enc === 'hex') return hexEncode(bytes);
    if (enc === 'base64') return b64Encode(bytes, false);
    if (enc === 'base64url') return b64Encode(bytes, true);
    if (enc !== undefined) throw new TypeError('Unknown digest encoding: ' + enc);
    return V2 ? Buffer._of(bytes) : byteString(bytes); // functions-javascript-runtime-features: 2.0 returns a Buffer
  }
  function Hasher(alg, key) {
    var fn = HASHES[String(alg).toLowerCase()];
    if (!fn) throw new TypeError('not supported algorithm: "' + alg + '"');
    var chunks = [], done = false;
    var self = {
      update: function (data) {
        if (done) throw new Error('Digest already called');
        chunks.push(toBytes(data)); return self;
      },
      digest: function (enc) {
        if (done) throw new Error('Digest already called');
        done = true;
        var msg = concatBytes(chunks);
        if (key === undefined) return digestOut(fn(msg), enc);
        var k = Array.prototype.slice.call(toBytes(key)), i;
        if (k.length > 64) k = fn(k);
        while (k.length < 64) k.push(0);
        var ipad = [], opad = [];
        for (i = 0; i < 64; i++) { ipad.push(k[i] ^ 0x36); opad.push(k[i] ^ 0x5c); }
        return digestOut(fn(opad.concat(fn(ipad.concat(msg)))), enc);
      },
    };
    return self;
  }
  var cryptoModule = Object.freeze({
    createHash: function (alg) { return Hasher(alg, undefined); },
    createHmac: function (alg, key) {
      if (key === undefined || key === null) throw new TypeError('HMAC key is required');
      return Hasher(alg, key);
    },
  });

  // ---------------------------------------------------------------- querystring (Node semantics)
  function qsUnescape(s) {
    try { return decodeURIComponent(s); } catch (e) {
      return s.replace(/(%[0-9a-fA-F]{2})+/g, function (m) { try { return decodeURIComponent(m); } catch (e2) { return '\ufffd'; } });
    }
  }
  function qsEscape(s) { return encodeURIComponent(s).replace(/[!'()*]/g, function (c) { return '%' + c.charCodeAt(0).toString(16).toUpperCase(); }); }
  function qsParse(str, sep, eq, opts) {
    sep = sep || '&'; eq = eq || '=';
    var dec = (opts && typeof opts.decodeURIComponent === 'function') ? opts.decodeURIComponent : qsUnescape;
    var max = opts && typeof opts.maxKeys === 'number' ? opts.maxKeys : 1000;
    var obj = {}, parts, i, p, k, v, idx;
    if (typeof str !== 'string' || str.length === 0) return obj;
    parts = str.split(sep);
    if (max > 0 && parts.length > max) parts = parts.slice(0, max);
    for (i = 0; i < parts.length; i++) {
      p = parts[i].replace(/\+/g, '%20');
      idx = p.indexOf(eq);
      if (idx >= 0) { k = p.slice(0, idx); v = p.slice(idx + eq.length); } else { k = p; v = ''; }
      if (k === '' && v === '' && idx < 0) continue;
      k = dec(k); v = dec(v);
      if (!hasOwn.call(obj, k)) obj[k] = v;
      else if (Array.isArray(obj[k])) obj[k].push(v);
      else obj[k] = [obj[k], v];
    }
    return obj;
  }
  function qsPrim(v) {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && isFinite(v)) return '' + v;
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    return '';
  }
  function qsStringify(obj, sep, eq, opts) {
    sep = sep || '&'; eq = eq || '=';
    var enc = (opts && typeof opts.encodeURIComponent === 'function') ? opts.encodeURIComponent : qsEscape;
    if (obj === null || typeof obj !== 'object') return '';
    return Object.keys(obj).map(function (k) {
      var ks = enc(qsPrim(k)) + eq, v = obj[k];
      if (Array.isArray(v)) return v.map(function (x) { return ks + enc(qsPrim(x)); }).join(sep);
      return ks + enc(qsPrim(v));
    }).filter(function (s) { return s.length; }).join(sep);
  }
  var querystringModule = Object.freeze({
    parse: qsParse, decode: qsParse, stringify: qsStringify, encode: qsStringify, escape: qsEscape, unescape: qsUnescape,
  });

  // ---------------------------------------------------------------- TextEncoder / TextDecoder / atob / btoa (2.0)
  function TextEncoder() { if (!new.target) throw new TypeError('Constructor TextEncoder requires new'); }
  TextEncoder.prototype.encode = function (s) { return new Uint8Array(utf8Encode(s === undefined ? '' : s)); };
  Object.defineProperty(TextEncoder.prototype, 'encoding', { get: function () { return 'utf-8'; } });
  function TextDecoder(label) {
    if (!new.target) throw new TypeError('Constructor TextDecoder requires new');
    if (label !== undefined && !/^utf-?8$/i.test(String(label))) throw new RangeError('unknown encoding: ' + label);
  }
  TextDecoder.prototype.decode = function (b) { return b === undefined ? '' : utf8Decode(toBytes(b)); };
  Object.defineProperty(TextDecoder.prototype, 'encoding', { get: function () { return 'utf-8'; } });
  function btoa(s) {
    s = String(s);
    for (var i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) throw new Error('InvalidCharacterError');
    return b64Encode(Array.prototype.map.call(s, function (c) { return c.charCodeAt(0); }), false);
  }
  function atob(s) { return byteString(b64Decode(s, true)); }

  // ---------------------------------------------------------------- console (log capture, 10 KB per call)
  function fmt(v) {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return String(v);
    if (typeof v === 'object' && v !== null) { try { return RealJSON.stringify(v); } catch (e) { return String(v); } }
    return String(v);
  }
  function log() {
    // functions-javascript-runtime-20: console.log takes one argument (more are not supported); 1.0 joins them.
    var line = V2 || arguments.length < 2 ? fmt(arguments[0]) : Array.prototype.map.call(arguments, fmt).join(' ');
    if (logTruncated) return;
    if (logBytes + line.length > LOG_LIMIT) { line = line.slice(0, Math.max(0, LOG_LIMIT - logBytes)); logTruncated = true; }
    logBytes += line.length;
    logs.push(line);
  }
  var consoleObj = Object.freeze({ log: log, info: log, warn: log, error: log, debug: log });

  // ---------------------------------------------------------------- the cloudfront module (2.0)
  function kvsHandle(id) {
    if (kvsData === null) throw new Error('No key value store is associated with this function (FunctionConfig.KeyValueStoreAssociations)');
    if (id !== undefined && id !== kvsArnId) throw new Error('The key value store "' + id + '" is not associated with this function');
    return Object.freeze({
      get: function (key, opts) {
        return new RealPromise(function (resolve, reject) {
          key = String(key);
          if (!hasOwn.call(kvsData, key)) { reject(new Error('Key "' + key + '" does not exist')); return; }
          var v = kvsData[key], format = opts && opts.format !== undefined ? opts.format : 'string';
          if (format === 'string') resolve(v);
          else if (format === 'json') resolve(RealJSON.parse(v));
          else if (format === 'bytes') resolve(Buffer.from(v, 'utf8'));
          else reject(new TypeError('Unknown format "' + format + '": use "string", "json" or "bytes"'));
        });
      },
      exists: function (key) { return RealPromise.resolve(hasOwn.call(kvsData, String(key))); },
      meta: function () { return RealPromise.resolve(Object.assign({}, kvsMeta)); },
    });
  }
  function originOp(kind) {
    return function (a, b) {
      if (eventType !== 'viewer-request') throw new Error(kind + ' can only be used in a viewer-request function');
      originOps.push([kind, a === undefined ? null : a, b === undefined ? null : b]);
    };
  }
  var cfModule = {
    kvs: kvsHandle,
    updateRequestOrigin: originOp('updateRequestOrigin'),
    selectRequestOriginById: originOp('selectRequestOriginById'),
    // helper-functions-origin-modification's last example calls overrideRequestOrigin (documented nowhere else)
    overrideRequestOrigin: originOp('selectRequestOriginById'),
    createRequestOriginGroup: originOp('createRequestOriginGroup'),
  };
  Object.defineProperty(cfModule, 'edgeLocation', { enumerable: true, get: function () { return edgeLocation; } });
  Object.defineProperty(cfModule, 'distributionTenant', { enumerable: true, get: function () {
    throw new TypeError('distributionTenant module is not available'); // saas-specific-logic-function-code
  } });
  Object.freeze(cfModule);

  function requireFn(name) {
    if (name === 'crypto') return cryptoModule;
    if (name === 'querystring') return querystringModule;
    if (V2 && name === 'buffer') return Object.freeze({ Buffer: Buffer });
    throw new Error('Cannot find module "' + name + '"');
  }

  // ---------------------------------------------------------------- Date: every read is the start time
  function CFDate() {
    if (!new.target) { varied = true; return new RealDate(startTime).toString(); }
    if (arguments.length === 0) varied = true;
    return RealReflect.construct(RealDate, arguments.length === 0 ? [startTime] : Array.prototype.slice.call(arguments), new.target);
  }
  CFDate.prototype = RealDate.prototype;
  Object.defineProperty(RealDate.prototype, 'constructor', { value: CFDate, writable: true, configurable: true });
  CFDate.now = function () { varied = true; return startTime; };
  CFDate.parse = RealDate.parse;
  CFDate.UTC = RealDate.UTC;
  G.Date = CFDate;
  var realRandom = Math.random;
  RealDefineProperty(Math, 'random', { value: function random() { varied = true; return realRandom(); },
    writable: true, enumerable: false, configurable: true });

  // ---------------------------------------------------------------- eval and the Function constructors throw
  function noEval() { throw new Error('eval is not supported'); }
  function noFunction() { throw new Error('Function constructor is not supported'); }
  G.eval = noEval;
  [function () {}, async function () {}].forEach(function (f) {
    Object.defineProperty(Object.getPrototypeOf(f), 'constructor', { value: noFunction, writable: false, configurable: false });
  });
  noFunction.prototype = Function.prototype;
  G.Function = noFunction;

  // ---------------------------------------------------------------- globals: keep only the allow-list
  var ALLOWED = ['Object', 'Function', 'Array', 'String', 'Number', 'Boolean', 'Symbol', 'Math', 'JSON', 'Date',
    'RegExp', 'Promise', 'Error', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError',
    'URIError', 'InternalError', 'ArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray',
    'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'parseInt',
    'parseFloat', 'isNaN', 'isFinite', 'encodeURI', 'encodeURIComponent', 'decodeURI', 'decodeURIComponent',
    'escape', 'unescape', 'Infinity', 'NaN', 'undefined', 'globalThis', 'eval'];
  if (V2) ALLOWED.push('AggregateError');
  Object.getOwnPropertyNames(G).forEach(function (n) { if (ALLOWED.indexOf(n) < 0) delete G[n]; });
  if (!V2) {
    // runtime 2.0 lists these as new: on 1.0 they are absent
    delete String.prototype.replaceAll;
    ['all', 'allSettled', 'any', 'race'].forEach(function (m) { delete RealPromise[m]; });
    delete Symbol.for; delete Symbol.keyFor;
  }
  if (V2) {
    G.Buffer = Buffer; G.TextEncoder = TextEncoder; G.TextDecoder = TextDecoder; G.atob = atob; G.btoa = btoa;
  } else {
    // functions-javascript-runtime-10: njs's non-standard byte-string methods (removed in 2.0) and MemoryError.
    // A "byte string" is a string whose characters are all below 256.
    var isByteString = function (s) { for (var i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) return false; return true; };
    var slice = function (s, start, end) { return String(s).slice(start === undefined ? 0 : start, end === undefined ? undefined : end); };
    var defineMethod = function (obj, name, fn) {
      Object.defineProperty(obj, name, { value: fn, writable: true, enumerable: false, configurable: true });
    };
    defineMethod(String, 'bytesFrom', function (v, enc) {
      if (Array.isArray(v)) return byteString(v.map(function (x) { return x & 255; }));
      var e = enc === undefined ? 'hex' : String(enc);
      if (e === 'hex') return byteString(hexDecode(v));
      if (e === 'base64' || e === 'base64url') return byteString(b64Decode(v, false));
      throw new TypeError('Unknown encoding: "' + e + '"');
    });
    defineMethod(String.prototype, 'fromBytes', function (start, end) {
      var s = slice(this, start, end);
      return isByteString(s) ? s : null;
    });
    defineMethod(String.prototype, 'fromUTF8', function (start, end) {
      var s = slice(this, start, end);
      if (!isByteString(s)) return null;
      var bytes = Array.prototype.map.call(s, function (c) { return c.charCodeAt(0); });
      var out = utf8Decode(bytes);
      return out.indexOf('\ufffd') >= 0 && s.indexOf('\xef\xbf\xbd') < 0 ? null : out;
    });
    defineMethod(String.prototype, 'toBytes', function (start, end) {
      var s = slice(this, start, end);
      return isByteString(s) ? s : null;
    });
    defineMethod(String.prototype, 'toUTF8', function (start, end) {
      return byteString(utf8Encode(slice(this, start, end)));
    });
    var MemoryError = function MemoryError(message) {
      if (!new.target) return new MemoryError(message);
      var e = new Error(message);
      RealSetPrototypeOf(e, MemoryError.prototype);
      return e;
    };
    MemoryError.prototype = Object.create(Error.prototype, {
      constructor: { value: MemoryError, writable: true, configurable: true },
      name: { value: 'MemoryError', writable: true, configurable: true },
    });
    G.MemoryError = MemoryError;
  }
  G.console = consoleObj;
  G.require = requireFn;

  // ---------------------------------------------------------------- what can make a result more than plain data
  // The viewer-request fast path (requestDelta below) reads the returned request directly instead of through
  // JSON; that is the same only for plain data properties. The calls that can give one of the event's own objects
  // an accessor, a non-enumerable property or another prototype mark the call ("tainted": the full path then
  // serialises the result as before); objects the function creates itself are checked where they are read.
  var tainted = false;
  function tainting(obj, name, onlyWithSecondArg) {
    var real = obj[name];
    var wrapper = function () {
      if (!onlyWithSecondArg || arguments[1] !== undefined) tainted = true;
      return real.apply(this, arguments);
    };
    RealDefineProperty(wrapper, 'length', { value: real.length });
    RealDefineProperty(wrapper, 'name', { value: real.name });
    RealDefineProperty(obj, name, { value: wrapper, writable: true, enumerable: false, configurable: true });
  }
  tainting(Object, 'defineProperty'); tainting(Object, 'defineProperties'); tainting(Object, 'setPrototypeOf');
  tainting(Object, 'create', true); // (Reflect is not a global here)
  tainting(ObjectProto, '__defineGetter__'); tainting(ObjectProto, '__defineSetter__');
  (function () {
    var d = Object.getOwnPropertyDescriptor(ObjectProto, '__proto__');
    if (!d || !d.set) return;
    var realSet = d.set;
    RealDefineProperty(ObjectProto, '__proto__', { configurable: d.configurable, enumerable: d.enumerable, get: d.get,
      set: function (v) { tainted = true; return realSet.call(this, v); } });
  })();

  // ---------------------------------------------------------------- freeze every intrinsic
  // Freezing a prototype makes its data properties read-only, and in strict mode an assignment to an inherited
  // read-only property throws ("the override mistake"): `obj.toString = f` would fail here and not on CloudFront.
  // For the members code commonly overrides, the frozen data property becomes an accessor whose setter defines
  // the property on the object assigned to (and refuses only the prototype itself).
  function overridable(proto, names) {
    names.forEach(function (name) {
      var d = Object.getOwnPropertyDescriptor(proto, name);
      if (!d || !('value' in d) || !d.configurable) return;
      var value = d.value;
      Object.defineProperty(proto, name, {
        configurable: false, enumerable: d.enumerable,
        get: function () { return value; },
        set: function (v) {
          if (this === proto) throw new TypeError('Cannot assign to read only property \'' + String(name) + '\' of a built-in');
          RealDefineProperty(this, name, { value: v, writable: true, enumerable: true, configurable: true });
        },
      });
    });
  }
  overridable(Object.prototype, ['constructor', 'toString', 'valueOf', 'toLocaleString', 'hasOwnProperty',
    'isPrototypeOf', 'propertyIsEnumerable']);
  overridable(Function.prototype, ['toString', 'constructor']);
  overridable(Array.prototype, ['toString', 'constructor', 'join', 'push', 'concat']);
  [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError].forEach(function (E) {
    overridable(E.prototype, ['name', 'message', 'toString', 'constructor']);
  });
  var seen = [];
  function deepFreeze(o) {
    if ((typeof o !== 'object' && typeof o !== 'function') || o === null || seen.indexOf(o) >= 0) return;
    seen.push(o);
    Object.freeze(o);
    deepFreeze(Object.getPrototypeOf(o));
    RealReflect.ownKeys(o).forEach(function (k) {
      var d = Object.getOwnPropertyDescriptor(o, k);
      if (!d) return;
      if ('value' in d) deepFreeze(d.value);
      else { deepFreeze(d.get); deepFreeze(d.set); }
    });
  }
  [G, Buffer, TextEncoder, TextDecoder, cryptoModule, querystringModule, cfModule, requestIdGet, requestIdSet,
   Object.getPrototypeOf(async function () {}), Object.getPrototypeOf(Uint8Array),
   Object.getPrototypeOf([][Symbol.iterator]()), Object.getPrototypeOf(''[Symbol.iterator]()),
   Object.getPrototypeOf(/a/[Symbol.matchAll]('')), Object.getPrototypeOf(new Uint8Array(0)[Symbol.iterator]()),
   Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()))].forEach(deepFreeze);
  seen = null;

  // ---------------------------------------------------------------- the driver Python calls
  var handlerFactory = null, pending = null, locJson = null, locObj = null, NO_LOC = Object.freeze({});
  function finish(ok, value) {
    var out = { ok: ok, logs: logs, truncated: logTruncated, origin: originOps };
    if (ok) {
      out.value = value;
      try { return RealJSON.stringify(out); } catch (e) { out.ok = false; out.value = undefined; out.error = String(e); }
    } else out.error = value;
    return RealJSON.stringify(out);
  }
  // ---------------------------------------------------------------- viewer-request events built here
  // invokeRequest gets the request's fields as strings (no JSON) and builds the event as event.build_event does
  // (test_request_delta.py compares the two): the header names come lowercased and without the hidden ones
  // (delta.request_fields), Cookie is parsed into cookies, the query string split on & and =, repeated names as
  // value + multiValue. Python sends only ASCII (no NUL), where the trimming below equals str.strip.
  function isSpace(c) { return c === 32 || (c >= 9 && c <= 13) || (c >= 28 && c <= 31); } // Python's ASCII whitespace
  function strip(s) {
    var a = 0, b = s.length;
    while (a < b && isSpace(s.charCodeAt(a))) a++;
    while (b > a && isSpace(s.charCodeAt(b - 1))) b--;
    return a === 0 && b === s.length ? s : s.slice(a, b);
  }
  // A field map's record of what it held when the function got it: null while empty, else one flat array of
  // [name, entry, value, multiValue array or null, its values or null] per name (few allocations: they dominate).
  function addField(map, t, name, value) {  // returns the record
    var i = -1, j, e;
    if (t === null) t = [];
    else if (hasOwn.call(map, name)) for (j = 0; j < t.length; j += 5) if (t[j] === name) { i = j; break; }
    if (i < 0) {
      e = { value: value };
      if (name === '__proto__') RealDefineProperty(map, name, { value: e, writable: true, enumerable: true, configurable: true });
      else map[name] = e;
      t.push(name, e, value, null, null);
      return t;
    }
    e = t[i + 1];
    if (t[i + 3] === null) { t[i + 3] = e.multiValue = [{ value: e.value }]; t[i + 4] = [e.value]; }
    t[i + 3].push({ value: value }); t[i + 4].push(value);
    return t;
  }
  function splitQuery(raw, map) {
    var parts = raw.split('&'), i, p, k, t = null;
    for (i = 0; i < parts.length; i++) {
      p = parts[i];
      if (p === '') continue;
      k = p.indexOf('=');
      t = k < 0 ? addField(map, t, p, '') : addField(map, t, p.slice(0, k), p.slice(k + 1));
    }
    return t;
  }
  function splitCookies(values, map) {
    var t = null;
    for (var i = 0; i < values.length; i++) {
      var parts = values[i].split(';');
      for (var j = 0; j < parts.length; j++) {
        var p = strip(parts[j]);
        if (p === '') continue;
        var k = p.indexOf('=');
        t = k < 0 ? addField(map, t, strip(p), '') : addField(map, t, strip(p.slice(0, k)), strip(p.slice(k + 1)));
      }
    }
    return t;
  }
  // the current invokeRequest's event: its request object, method, raw query string, maps and their records
  var bRequest = null, bMethod = '', bQs = '', bDigit = false, bHMap = null, bHT = null, bQMap = null, bQT = null,
    bCMap = null, bCT = null, bPlain = false;
  // fields: distribution domain, distribution id, request id, viewer ip, method, uri, raw query string, '1' when
  // the request is plain (see apply_request_delta) else '', then lowercased header name, value, name, value ... in
  // the order received, the hidden ones left out, joined by NUL (delta.request_fields)
  function buildRequestEvent(fields) {
    var parts = fields.split('\0');
    return { version: '1.0', context: eventContext(parts, 'viewer-request'), viewer: { ip: parts[3] },
      request: requestPart(parts) };
  }
  // The event's context; its requestId an accessor that marks the call varied when read (a write makes it a plain
  // value again), enumerable in its place: JSON.stringify, Object.keys and spreading see the same object.
  var requestId = '';
  function requestIdGet() { varied = true; return requestId; }
  function requestIdSet(v) { RealDefineProperty(this, 'requestId', { value: v, writable: true, enumerable: true, configurable: true }); }
  var REQUEST_ID = { get: requestIdGet, set: requestIdSet, enumerable: true, configurable: true };
  function eventContext(parts, type) {
    var c = { distributionDomainName: parts[0], distributionId: parts[1], eventType: type, requestId: '' };
    requestId = parts[2];
    RealDefineProperty(c, 'requestId', REQUEST_ID);
    return c;
  }
  function requestPart(parts) {  // the event's request object from the split fields (and the b... state)
    var cookies = null, i, lname, c, qs = parts[6];
    var hmap = {}, ht = null, qmap = {}, qt = null, cmap = {}, ct = null, digitKey = false;
    for (i = 8; i + 1 < parts.length; i += 2) {
      lname = parts[i];
      if (lname === 'cookie') { if (cookies === null) cookies = []; cookies.push(parts[i + 1]); continue; }
      c = lname.charCodeAt(0);
      if (c >= 48 && c <= 57) digitKey = true;
      ht = addField(hmap, ht, lname, parts[i + 1]);
    }
    if (qs !== '') qt = splitQuery(qs, qmap);
    if (cookies !== null) ct = splitCookies(cookies, cmap);
    var request = { method: parts[4], uri: parts[5], querystring: qmap, headers: hmap, cookies: cmap };
    bRequest = request; bMethod = parts[4]; bQs = qs; bDigit = digitKey; bPlain = parts[7] === '1';
    bHMap = hmap; bHT = ht; bQMap = qmap; bQT = qt; bCMap = cmap; bCT = ct;
    return request;
  }
  // the current invokeResponse's response object, status, description, header map and its record
  var rResponse = null, rStatus = 0, rDesc = '', rDigit = false, rHMap = null, rHT = null, rCMap = null;
  // A viewer-response event from the request's fields (as above) and the response's: status code, status
  // description, then lowercased header name, value, ... in the order received, the hidden ones left out, joined by
  // NUL (delta.response_fields; only for a response without Set-Cookie, whose headers are all shown, one entry
  // each: the response's cookies map is empty).
  function buildResponseEvent(fields, responseFields) {
    var parts = fields.split('\0'), request = requestPart(parts), rp = responseFields.split('\0');
    var hmap = {}, ht = null, digitKey = false, i, c;
    bRequest = null;  // (not a viewer-request event)
    for (i = 2; i + 1 < rp.length; i += 2) {
      c = rp[i].charCodeAt(0);
      if (c >= 48 && c <= 57) digitKey = true;
      ht = addField(hmap, ht, rp[i], rp[i + 1]);
    }
    var response = { statusCode: +rp[0], statusDescription: rp[1], headers: hmap, cookies: {} };
    rResponse = response; rStatus = response.statusCode; rDesc = rp[1]; rDigit = digitKey; rHMap = hmap; rHT = ht;
    rCMap = response.cookies;
    return { version: '1.0', context: eventContext(parts, 'viewer-response'), viewer: { ip: parts[3] },
      request: request, response: response };
  }

  // ---------------------------------------------------------------- viewer-request results as a delta
  // What event.apply_request_result would do with the returned request, decided here when the answer is simple:
  // the event's own request object came back with its method, query string, cookies and every original header
  // entry untouched (same objects, same values, same order, nothing added to them) and at most a new uri and new
  // header names appended, each a plain {value: string} or {multiValue: [{value: string}, ...]}, and nothing was
  // logged and no origin helper called. Then only "\x02" + n + ":" + uri + "\x01" + name + "\x01" + value ... goes
  // back, n the number of names and values (\x01: NUL does not cross the binding's strings; a string with \x01 in it
  // is invalid anyway, and the count tells Python it was there: the full path then answers); a name that starts
  // with a digit or respells one of the request's is left to Python to see
  // (delta.apply_request_delta validates and applies it); anything else - or a call that used
  // defineProperty & co. (tainted) - returns null and the result goes back as JSON as before. Only plain data is
  // read here, so no getter, setter or toJSON of the function's runs (the full path would run them).
  // The event's own objects are read field by field, as apply_request_result reads them: a property the function
  // added to the request or to one of its original entries is ignored (apply_request_result ignores it too; only a
  // value there that cannot be serialised, or runs code when it is - a BigInt, a cycle, a getter or toJSON inside
  // it - makes the full path fail or differ, and such a value is ignored here). They cannot have a getter or another
  // prototype without tainting the call, so those reads run no code of the function's.
  function plainValue(o) {  // a function-made {value: string}: its string, or null
    if (o === null || typeof o !== 'object' || getProto(o) !== ObjectProto) return null;
    if (lookupGetter.call(o, 'value') !== undefined) return null;
    var k = objectKeys(o);
    return k.length === 1 && k[0] === 'value' && typeof o.value === 'string' ? o.value : null;
  }
  var deltaParts = [];
  function entryValues(e, name) {  // a function-made entry: push name/value pairs as the full path reads it
    if (e === null || typeof e !== 'object' || getProto(e) !== ObjectProto) return false;
    if (lookupGetter.call(e, 'value') !== undefined) return false;
    if (!hasOwn.call(e, 'multiValue')) {  // {value: string} (and properties the full path does not read)
      if (typeof e.value !== 'string' || hasOwn.call(e, 'toJSON')) return false;
      deltaParts.push(name, e.value);
      return true;
    }
    if (lookupGetter.call(e, 'multiValue') !== undefined) return false;
    var k = objectKeys(e), i, m, v, out = deltaParts;
    if (k.length === 1 && k[0] === 'value') {
      if (typeof e.value !== 'string') return false;
      out.push(name, e.value);
      return true;
    }
    if (k.length === 1 ? k[0] !== 'multiValue' : k.length !== 2 || !hasOwn.call(e, 'multiValue') ||
        !hasOwn.call(e, 'value') || typeof e.value !== 'string') return false;
    m = e.multiValue;
    if (m === null) {  // multiValue: null is absent for the full path: the value is used
      if (k.length !== 2) return false;
      out.push(name, e.value);
      return true;
    }
    if (!isArray(m) || getProto(m) !== ArrayProto || hasOwn.call(m, 'toJSON')) return false;
    for (i = 0; i < m.length; i++) {
      v = plainValue(m[i]);
      if (v === null) return false;
      out.push(name, v);
    }
    return true;
  }
  // (A map's own toJSON needs no test: an added one is an extra key, a non-enumerable or inherited one taints.)
  function untouched(map, t, obj) {  // the event's own field map obj holds what it held, nothing more, in order
    if (obj !== map) return false;
    var keys = objectKeys(obj), n = t === null ? 0 : t.length / 5, i;
    if (keys.length !== n) return false;
    for (i = 0; i < n; i++) if (!sameEntry(t, obj, keys[i], i * 5)) return false;
    return true;
  }
  function sameEntry(t, obj, key, j) {
    if (key !== t[j]) return false;
    var e = obj[key], mv = t[j + 3], vals, k;
    if (e !== t[j + 1] || e.value !== t[j + 2] || e.toJSON !== undefined) return false;
    if (mv === null) return e.multiValue === undefined;
    if (e.multiValue !== mv || mv.toJSON !== undefined) return false;
    vals = t[j + 4];
    if (mv.length !== vals.length) return false;
    for (k = 0; k < vals.length; k++) if (plainValue(mv[k]) !== vals[k]) return false;
    return true;
  }
  function requestDelta(r) {
    if (tainted || bRequest === null || r !== bRequest || bDigit || logs.length !== 0 || originOps.length !== 0) return null;
    if (r.method !== bMethod || typeof r.uri !== 'string' || r.statusCode !== undefined ||
        r.toJSON !== undefined) return null;
    if (!untouched(bQMap, bQT, r.querystring) || !untouched(bCMap, bCT, r.cookies)) return null;
    if (headerDelta(r.headers, bHMap, bHT) === null) return null;
    // \x03: the request is "plain" (see buildRequestEvent): delta.apply_request_delta's short way
    deltaParts[0] = (bPlain ? '\x03' : '\x02') + (varied ? '' : '=') + (deltaParts.length - 1) / 2 + ':' + r.uri;
    return deltaParts.join('\x01'); // (joined, not concatenated: the binding cannot read QuickJS's rope strings)
  }
  // The header map h came back as the event's own map, its original entries untouched, perhaps with names added:
  // deltaParts = ['', name, value, ...] of the added ones and true; null otherwise. (Whether an added name is
  // another spelling of one in the map is Python's to see: it lowercases them anyway.)
  function headerDelta(h, map, t) {
    var n = t === null ? 0 : t.length / 5, hk, i, k, out;
    if (h !== map) return null;
    hk = objectKeys(h);
    if (hk.length < n) return null;
    for (i = 0; i < n; i++) if (!sameEntry(t, h, hk[i], i * 5)) return null;
    out = deltaParts;
    out.length = 0;
    out.push('');
    for (; i < hk.length; i++) {
      k = hk[i];
      if (!entryValues(h[k], k)) return null;
    }
    return true;
  }
  // What event.apply_response_result would do with the returned response, when it is the event's own response
  // object with its status, description and cookies as they were, no body, its original header entries untouched
  // and plain names added (the same rules as requestDelta): "\x03" + n + "\x01" + name + "\x01" + value ...
  // (apply_response_delta)
  function responseDelta(r) {
    if (tainted || rResponse === null || r !== rResponse || rDigit || logs.length !== 0 || originOps.length !== 0) return null;
    if (r.statusCode !== rStatus || r.statusDescription !== rDesc || r.body !== undefined || r.toJSON !== undefined ||
        !untouched(rCMap, null, r.cookies) || headerDelta(r.headers, rHMap, rHT) === null) return null;
    deltaParts[0] = '\x03' + (varied ? '' : '=') + (deltaParts.length - 1) / 2;
    return deltaParts.join('\x01');
  }
  function errText(e) {
    try {
      if (e instanceof Error) return String(e);
      return 'Error: ' + fmt(e);
    } catch (e2) { return 'Error: uncaught exception'; }
  }
  var lastValue, deltaOf = null;  // the current call's requestDelta or responseDelta (null: the result as JSON)
  function finishDelta(value) {
    var delta = null;
    try { delta = deltaOf(value); } catch (e) { delta = null; } // (only plain data is read: a safety net)
    if (delta === null) return finish(true, value);
    lastValue = value;
    return delta;
  }
  function run(ev, rawQs, start, edgeLocationJson) {
    // (the per-call arrays are emptied, not replaced: nothing outside this file holds them, allocations cost)
    startTime = start; logs.length = 0; logBytes = 0; logTruncated = false; originOps.length = 0; pending = null;
    tainted = false; varied = false;
    var r;
    eventType = ev.context && ev.context.eventType;
    if (eventType !== 'viewer-request') edgeLocation = NO_LOC;
    else {
      if (edgeLocationJson !== locJson) { locObj = Object.freeze(RealJSON.parse(edgeLocationJson)); locJson = edgeLocationJson; }
      edgeLocation = locObj;
    }
    if (V2 && ev.request) {
      RealDefineProperty(ev.request, 'rawQueryString', { value: function () { return rawQs === null ? undefined : rawQs; } });
    }
    try {
      var handler = handlerFactory(V2 ? cfModule : undefined, requireFn, consoleObj);
      if (typeof handler !== 'function') return finish(false, 'TypeError: handler is not a function');
      r = handler(ev);
    } catch (e) { return finish(false, errText(e)); }
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
      pending = { done: false };
      var p = pending;
      RealPromise.resolve(r).then(function (v) { p.done = true; p.ok = true; p.value = v; },
        function (e) { p.done = true; p.ok = false; p.value = errText(e); });
      return null;
    }
    return deltaOf !== null ? finishDelta(r) : finish(true, r);
  }
  var api = {
    define: function (factory) { handlerFactory = factory; },
    loadKvs: function (dataJson, metaJson, arnId) {
      kvsData = dataJson === null ? null : Object.assign(Object.create(null), RealJSON.parse(dataJson));
      kvsMeta = metaJson === null ? null : RealJSON.parse(metaJson);
      kvsArnId = arnId;
    },
    invoke: function (eventJson, rawQs, start, edgeLocationJson) {
      bRequest = rResponse = deltaOf = null; lastValue = undefined;
      return run(RealJSON.parse(eventJson), rawQs, start, edgeLocationJson);
    },
    // a viewer-request event from the request's fields; the result may come back as a delta ('full': as JSON)
    invokeRequest: function (start, edgeLocationJson, fields) {
      lastValue = undefined; rResponse = null; deltaOf = requestDelta;
      var ev = buildRequestEvent(fields);
      return run(ev, bQs === '' ? null : bQs, start, edgeLocationJson);
    },
    // a viewer-response event from the request's and the response's fields; the same for its result
    invokeResponse: function (start, fields, responseFields) {
      lastValue = undefined; deltaOf = responseDelta;
      var ev = buildResponseEvent(fields, responseFields);
      return run(ev, bQs === '' ? null : bQs, start, '{}');
    },
    full: function () { return finish(true, lastValue); },
    // the event invokeRequest would build, as JSON (tests compare it with event.build_event's)
    requestEvent: function (fields) {
      var ev = buildRequestEvent(fields);
      bRequest = null;
      return RealJSON.stringify(ev);
    },
    responseEvent: function (fields, responseFields) {
      var ev = buildResponseEvent(fields, responseFields);
      rResponse = null;
      return RealJSON.stringify(ev);
    },
    settle: function () {
      if (pending === null || !pending.done) return finish(false, 'Error: the handler\'s promise never settled');
      if (pending.ok && deltaOf !== null) return finishDelta(pending.value);
      return finish(pending.ok, pending.value);
    },
  };
  return function (op, a, b, c, d) { return api[op](a, b, c, d); };
})
