'use strict';
// edgelab's Node.js runtime: one long-lived process per execution environment, started as
//   node <AWS's flags> shim.cjs <channel fd>
// with stdout/stderr on a memfd shared with the core (O_APPEND) and the channel a unix socket carrying the frames
// of edge/invocation/runtime/protocol.py (plus HELLO and INIT, see runtime/node/__init__.py). Dependency-free.
//
// What it reproduces, and from where (AWS's Node.js runtime interface client, "RIC"; the managed nodejs18.x to
// nodejs22.x runtimes behave as its 3.x line, nodejs24.x as its 4.x rewrite):
// - handler strings, module loading (.js/.mjs/.cjs, package.json "type", ESM top-level await), nested exports:
//   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html (RIC 3.x UserFunction.js, 4.x module-loader)
// - async/Promise handlers, callback(err, result), context.succeed/fail/done, callbackWaitsForEmptyEventLoop,
//   callback handlers refused on Node.js 24 (Runtime.CallbackHandlerDeprecated):
//   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html, .../nodejs-context.html
// - the context object and the awslambda global: https://docs.aws.amazon.com/lambda/latest/dg/nodejs-context.html
// - console lines (text and AWS_LAMBDA_LOG_FORMAT=JSON, AWS_LAMBDA_LOG_LEVEL):
//   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-logging.html
// - error payloads {errorType, errorMessage, trace} and the Runtime.* error types:
//   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-exceptions.html
// - response streaming through a buffered Invoke (the bytes written): .../config-rs-invoke-furls.html
// See /work/shared/docs/runtimes.md sections 1.2 to 1.8 for the detailed rules and their sources.

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const util = require('node:util');
const Module = require('node:module');
const { pathToFileURL } = require('node:url');
const { Writable } = require('node:stream');
const { performance } = require('node:perf_hooks');

const HS = 12;
const EMPTY = Buffer.alloc(0);
const OUTPUT_LIMIT = 1 << 20; // function output kept per invocation (as the Python worker)
const RESPONSE_LIMIT = 6291556;
const K_INVOKE = 'i', K_READY = 'r', K_INIT_ERROR = 'e', K_RESULT = 'o', K_ERROR = 'f', K_OOM = 'm';
const K_HELLO = 'h', K_INIT = 'n';
const ESM_HOOKS = path.join(__dirname, 'esm_hooks.mjs');

if (process.env.EDGELAB_PARENT_PID && process.ppid !== Number(process.env.EDGELAB_PARENT_PID)) {
  process.exit(70); // the core died between fork and the parent-death signal taking effect
}
process.on('SIGXFSZ', () => {}); // a write past the /tmp quota (RLIMIT_FSIZE) fails with EFBIG instead of killing

// ---------------------------------------------------------------------------------------------------------------
// Frames
const sock = new net.Socket({ fd: Number(process.argv[2]), readable: true, writable: true });

let rbuf = null;

function frame(meta, body, log) {
  const m = Buffer.from(JSON.stringify(meta));
  body = body || EMPTY;
  log = log || EMPTY;
  const h = Buffer.allocUnsafe(HS);
  h.writeUInt32LE(m.length, 0);
  h.writeUInt32LE(body.length, 4);
  h.writeUInt32LE(log.length, 8);
  return Buffer.concat([h, m, body, log], HS + m.length + body.length + log.length);
}

// Frames go out with one write(2) on the channel's fd when nothing is queued in the stream (the usual case: a few
// hundred bytes into an empty socket buffer), which skips the stream machinery's per-write objects and callbacks;
// whatever the kernel does not take at once (EAGAIN, a short write) goes through the stream, in order.
const channelFd = Number(process.argv[2]);
function send(meta, body, log, then) {
  sock.ref();
  const buf = frame(meta, body, log);
  let sent = 0;
  if (sock.writableLength === 0) {
    try {
      sent = fs.writeSync(channelFd, buf);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
  if (sent < buf.length) sock.write(sent ? buf.subarray(sent) : buf, then);
  else if (then) setImmediate(then);
}

sock.on('data', (chunk) => {
  rbuf = rbuf ? Buffer.concat([rbuf, chunk]) : chunk;
  while (rbuf !== null && rbuf.length >= HS) {
    const ml = rbuf.readUInt32LE(0), bl = rbuf.readUInt32LE(4), ll = rbuf.readUInt32LE(8);
    const need = HS + ml + bl + ll;
    if (rbuf.length < need) return;
    const meta = JSON.parse(rbuf.toString('utf8', HS, HS + ml));
    const body = rbuf.subarray(HS + ml, HS + ml + bl);
    rbuf = rbuf.length === need ? null : rbuf.subarray(need);
    onFrame(meta, body);
  }
});
sock.on('end', () => process.exit(0)); // the core closed the channel: shut down
sock.on('error', () => process.exit(0));

// ---------------------------------------------------------------------------------------------------------------
// Output (fd 1 and 2 are one memfd opened O_APPEND by the core) and the log record of logformat.py
function drainOutput() {
  let size;
  try {
    size = fs.fstatSync(1).size;
  } catch {
    return EMPTY;
  }
  if (!size) return EMPTY;
  const n = Math.min(size, OUTPUT_LIMIT);
  const buf = Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    const r = fs.readSync(1, buf, got, n - got, got);
    if (r <= 0) break;
    got += r;
  }
  fs.ftruncateSync(1, 0);
  const out = buf.subarray(0, got);
  if (size <= OUTPUT_LIMIT) return out;
  return Buffer.concat([out, Buffer.from(`\n[edgelab] ${size - OUTPUT_LIMIT} bytes of function output truncated\n`)]);
}

function fmt2(x) { // Python's format(x, ".2f"): exact ties round half to even
  const m = x * 1000; // only a value near a ...5 in the third decimal can be an exact tie (checked exactly)
  if (Math.abs(m - Math.round(m)) > 1e-6 || Math.abs(Math.round(m) % 10) !== 5) return x.toFixed(2);
  const full = x.toFixed(100);
  const dot = full.indexOf('.');
  if (/^50*$/.test(full.slice(dot + 3)) && Number(full[dot + 2]) % 2 === 0) return full.slice(0, dot + 3);
  return x.toFixed(2);
}

function logRecord(meta, rid, output, durationMs, rssKb) {
  const lines = Array.isArray(meta.pre) ? meta.pre.slice() : [];
  lines.push(`START RequestId: ${rid} Version: ${config.env.AWS_LAMBDA_FUNCTION_VERSION || '$LATEST'}`);
  if (output.length) {
    const text = output.toString('utf8').split('\n');
    if (text[text.length - 1] === '') text.pop();
    for (const line of text) lines.push(line);
  }
  lines.push(`END RequestId: ${rid}`);
  const mem = config.memory_mb;
  let report = `REPORT RequestId: ${rid}\tDuration: ${fmt2(durationMs)} ms\tBilled Duration: `
    + `${Math.max(1, Math.ceil(durationMs))} ms\tMemory Size: ${mem} MB\tMax Memory Used: `
    + `${Math.min(mem, Math.ceil(rssKb / 1024))} MB\t`;
  if (meta.init !== undefined && meta.init !== null) report += `Init Duration: ${fmt2(meta.init)} ms\t`;
  lines.push(report);
  return Buffer.from(JSON.stringify([Date.now(), rid, lines]));
}

// ---------------------------------------------------------------------------------------------------------------
// Errors (RIC 3.x Errors.js / 4.x utils/error.ts shapes)
function runtimeError(name) {
  const cls = class extends Error {};
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}
const ImportModuleError = runtimeError('ImportModuleError');
const HandlerNotFound = runtimeError('HandlerNotFound');
const MalformedHandlerName = runtimeError('MalformedHandlerName');
const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');
const MalformedStreamingHandler = runtimeError('MalformedStreamingHandler');
const CallbackHandlerDeprecated = runtimeError('CallbackHandlerDeprecated');
class NodeJsExit extends Error {
  constructor() {
    super('The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a '
      + 'Promise that was never settled. For more information, see '
      + 'https://nodejs.org/docs/latest/api/process.html#exit-codes');
  }
}
NodeJsExit.prototype.name = 'Runtime.NodeJsExit';
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';

const DEL = (s) => (typeof s === 'string' ? s.replaceAll('\x7F', '%7F') : s);

function errorRecord(error) { // the Invoke / init-error payload
  try {
    if (gen >= 4) {
      if (error instanceof Error) {
        return { errorType: DEL(error.name), errorMessage: DEL(error.message),
          trace: typeof error.stack === 'string' ? DEL(error.stack).split('\n') : [] };
      }
      return { errorType: typeof error, errorMessage: String(error), trace: [] };
    }
    const errorLike = error && typeof error.name === 'string' && typeof error.message === 'string'
      && typeof error.stack === 'string' && error.name && error.message && error.stack;
    if (util.types.isNativeError(error) || errorLike) {
      return { errorType: DEL(error.name), errorMessage: DEL(error.message), trace: DEL(error.stack).split('\n') };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return { errorType: 'handled', errorMessage: 'callback called with Error argument, but there was a problem '
      + 'while retrieving one or more of its message, name, and stack' };
  }
}

function withEnumerableProperties(_key, value) {
  if (!(value instanceof Error)) return value;
  const ret = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
  if (typeof value.stack === 'string') ret.stack = value.stack.split('\n');
  return ret;
}

function toFormatted(error) { // the text after "Invoke Error" / "Uncaught Exception" in text logs
  try {
    return '\t' + JSON.stringify(error, withEnumerableProperties);
  } catch {
    return '\t' + JSON.stringify(errorRecord(error));
  }
}

const intoError = (err) => (err instanceof Error ? err : new Error(err));

// ---------------------------------------------------------------------------------------------------------------
// Console (RIC LogPatch): one line per call, newlines as CR; text or JSON; AWS_LAMBDA_LOG_LEVEL filters
const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
let requestId; // undefined until the first invocation (printed as "undefined" during Init, as AWS does)
let logError = (label, err) => console.error(label, toFormatted(intoError(err)));

function jsonErrorReplacer(_key, value) {
  if (!(value instanceof Error)) return value;
  return Object.assign({ errorType: value?.constructor?.name ?? 'UnknownError', errorMessage: value.message,
    stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack }, value);
}

function jsonLine(level, args) {
  const rec = { timestamp: new Date().toISOString(), level, requestId };
  if (args.length === 1) {
    rec.message = args[0];
    try {
      return JSON.stringify(rec, jsonErrorReplacer);
    } catch {
      rec.message = util.format(rec.message);
      return JSON.stringify(rec);
    }
  }
  rec.message = util.format(...args);
  for (const a of args) {
    if (a instanceof Error) {
      rec.errorType = a?.constructor?.name ?? 'UnknownError';
      rec.errorMessage = a.message;
      rec.stackTrace = typeof a.stack === 'string' ? a.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(rec);
}

function patchConsole(env) {
  const json = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const min = LEVELS[(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const write = json
    ? (level, args) => process.stdout.write(jsonLine(level, args).replace(/\n/g, '\r') + '\n')
    : (level, args) => process.stdout.write(
      `${new Date().toISOString()}\t${requestId}\t${level}\t${util.format(...args)}`.replace(/\n/g, '\r') + '\n');
  const make = (level) => (LEVELS[level] >= min ? (...args) => write(level, args.length ? args : [undefined])
    : () => {});
  console.trace = make('TRACE');
  console.debug = make('DEBUG');
  console.info = make('INFO');
  console.warn = make('WARN');
  console.error = make('ERROR');
  console.fatal = gen >= 4 ? make('FATAL') : (...args) => write('FATAL', args.length ? args : [undefined]);
  console.log = console.info;
  logError = json ? (_label, err) => console.error(intoError(err))
    : (label, err) => console.error(label, toFormatted(intoError(err)));
}

// ---------------------------------------------------------------------------------------------------------------
// The awslambda global and buffered response streaming
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');

class ResponseStream extends Writable {
  constructor(options) {
    super(options);
    this.chunks = [];
    this.contentType = 'application/octet-stream';
  }
  _write(chunk, _enc, cb) {
    this.chunks.push(chunk);
    cb();
  }
  setContentType(contentType) {
    this.contentType = contentType;
  }
}

const HttpResponseStream = {
  from(stream, prelude) {
    stream.setContentType('application/vnd.awslambda.http-integration-response');
    stream.write(JSON.stringify(prelude));
    stream.write(Buffer.alloc(8));
    return stream;
  },
};

function installAwslambda(env) {
  if (env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA === '1' || env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA === 'true') return;
  globalThis.awslambda = {
    ...(gen >= 4 ? globalThis.awslambda : {}),
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = 'response';
      if (typeof options?.highWaterMark === 'number') handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
      return handler;
    },
    HttpResponseStream,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Handler loading
function hasTypeModule(folder) { // nearest package.json decides; a node_modules folder or / ends the walk
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj));
        if (pkg) return pkg.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    if (folder === '/') return false;
    folder = path.resolve(folder, '..');
  }
}

const tryRequire = (file) => (fs.existsSync(file) ? require(file) : undefined);
const tryImport = async (file) => (fs.existsSync(file) ? import(pathToFileURL(file).href) : undefined);

async function loadModule3(appRoot, moduleRoot, name) {
  const base = path.resolve(appRoot, moduleRoot, name);
  const extensionless = tryRequire(base);
  if (extensionless) return extensionless;
  const typeModule = fs.existsSync(base + '.js') && hasTypeModule(path.dirname(base + '.js'));
  if (!typeModule) {
    const cjs = tryRequire(base + '.js');
    if (cjs) return cjs;
  }
  const loaded = (typeModule && await tryImport(base + '.js')) || await tryImport(base + '.mjs')
    || tryRequire(base + '.cjs');
  if (loaded) return loaded;
  return require(require.resolve(name, { paths: [appRoot, moduleRoot] }));
}

async function loadModule4(appRoot, moduleRoot, name) {
  const base = path.resolve(appRoot, moduleRoot, name);
  for (const ext of ['', '.js', '.mjs', '.cjs']) {
    const mod = await tryImport(base + ext);
    if (mod) return mod;
  }
  return require(require.resolve(name, { paths: [appRoot, path.join(appRoot, moduleRoot)] }));
}

function findIn(handlerPath, obj, strict) {
  return handlerPath.split('.').reduce((o, k) => (strict ? (o && typeof o === 'object' ? o[k] : undefined)
    : o && o[k]), obj);
}

async function loadHandler(appRoot, full) {
  if (full.includes('..')) {
    throw new MalformedHandlerName(`'${full}' is not a valid handler name. Use absolute paths when specifying root `
      + 'directories in handler names.');
  }
  const base = path.basename(full);
  let moduleRoot = full.substring(0, full.indexOf(base));
  const m = base.match(/^([^.]*)\.(.*)$/);
  if (!m) throw new MalformedHandlerName('Bad handler');
  let mod;
  try {
    if (gen >= 4) {
      moduleRoot = moduleRoot.replace(/\/$/, '');
      mod = await loadModule4(appRoot, moduleRoot, m[1]);
    } else {
      mod = await loadModule3(appRoot, moduleRoot, m[1]);
    }
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(String(e));
    if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(String(e));
    throw e;
  }
  let fn = findIn(m[2], mod, gen >= 4);
  if (!fn && gen >= 4 && mod && typeof mod === 'object' && 'default' in mod) fn = findIn(m[2], mod.default, true);
  if (!fn) throw new HandlerNotFound(`${full} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${full} is not a function`);
  return fn;
}

// ---------------------------------------------------------------------------------------------------------------
// State
let gen = 3; // 3: nodejs18.x-22.x (RIC 3.x), 4: nodejs24.x (RIC 4.x)
let state = 'boot'; // boot -> init -> idle <-> invoke
let config = null;
let handler = null;
let meta = null; // metadata of the handler: { isAsync, argsNum, streaming, highWaterMark }
let inv = null; // the invocation in flight
let beforeExit = null; // what the next 'beforeExit' does while an invocation waits for the event loop (3.x)
let tmpQuota = 0;

process.on('beforeExit', () => {
  const f = beforeExit;
  if (f !== null && inv !== null && !inv.done) f();
});

// Peak resident set in KiB. getrusage's ru_maxrss costs one syscall, but Linux carries the spawning process's
// peak across execve into it: when that peak exceeds ours (a runtime started straight from a large core), it is
// not ours, and VmHWM from /proc/self/status (several times dearer) is read instead.
const statusBuf = Buffer.allocUnsafe(4096);
let statusFd = -1;
function vmHwmKb() {
  if (statusFd < 0) statusFd = fs.openSync('/proc/self/status', 'r');
  const n = fs.readSync(statusFd, statusBuf, 0, statusBuf.length, 0);
  const text = statusBuf.toString('latin1', 0, n);
  const at = text.indexOf('VmHWM:');
  return at < 0 ? 0 : parseInt(text.slice(at + 6), 10);
}
const inheritedMaxRss = process.resourceUsage().maxRSS;
const maxRssIsOurs = inheritedMaxRss <= vmHwmKb() + 1024;
function rssKb() {
  if (maxRssIsOurs) return process.resourceUsage().maxRSS;
  const own = process.resourceUsage().maxRSS;
  return own > inheritedMaxRss ? own : vmHwmKb(); // past the inherited value it can only be ours
}

function fatal(err, code) { // 3.x: an uncaught exception (129) or unhandled rejection (128) ends the runtime
  if (state === 'init') {
    send({ t: K_INIT_ERROR, rss: rssKb() }, Buffer.from(JSON.stringify(errorRecord(err))), drainOutput(),
      () => process.exit(code));
  } else if (inv !== null && !inv.done) {
    finish(K_ERROR, Buffer.from(JSON.stringify(errorRecord(err))), err?.name ?? typeof err, true,
      () => process.exit(code));
  } else {
    process.exit(code);
  }
}

function installProcessHandlers() {
  if (gen >= 4) return; // RIC 4.x installs none: Node's defaults print the error and exit with status 1
  process.on('uncaughtException', (err) => {
    logError('Uncaught Exception', err);
    fatal(err, 129);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const err = new UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', err);
    fatal(err, 128);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Init
function onFrame(m, body) {
  if (m.t === K_INVOKE && state === 'idle') invoke(m, body);
  else if (m.t === K_INIT && state === 'boot') init(m).catch((e) => initFailed(e));
  else process.exit(71); // a frame out of order: a core bug; the core sees the exit
}

async function init(cfg) {
  state = 'init';
  const t0 = performance.now();
  config = cfg;
  gen = Number((/^nodejs(\d+)\.x$/.exec(cfg.runtime) || [0, 24])[1]) >= 24 ? 4 : 3;
  tmpQuota = Number(cfg.tmp_quota_mb || 0) * 1024 * 1024;
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, cfg.env);
  process.chdir(cfg.task_root);
  // NODE_PATH for CommonJS was fixed when this process started (the core links its slot to this function's task
  // root and layers: node_process.py); ES modules get the layer folders through the resolve hook registered then
  patchConsole(cfg.env);
  installProcessHandlers();
  installAwslambda(cfg.env);
  try {
    handler = await loadHandler(cfg.task_root, cfg.handler);
    const streaming = handler[HANDLER_STREAMING];
    if (streaming && streaming !== 'response') throw new MalformedStreamingHandler('Only response streaming is supported.');
    meta = { isAsync: handler.constructor?.name === 'AsyncFunction', argsNum: handler.length,
      streaming: streaming === 'response', highWaterMark: handler[HANDLER_HIGHWATERMARK] };
    if (gen >= 4 && meta.argsNum >= 3 && !meta.streaming) {
      throw new CallbackHandlerDeprecated('ERROR: AWS Lambda has removed support for callback-based function handlers '
        + 'starting with Node.js 24. You need to modify this function to use a supported handler signature to use '
        + 'Node.js 24 or later. For more information see https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html.');
    }
    if (gen < 4 && meta.argsNum === 3 && !meta.isAsync && !meta.streaming
        && process.env.AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING === undefined) {
      console.warn('AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24. '
        + 'You will need to update this function to use an async handler to use Node.js 24 or later. For more '
        + 'information and to provide feedback on this change, see '
        + 'https://github.com/aws/aws-lambda-nodejs-runtime-interface-client/issues/137. To disable this warning, set '
        + 'the AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING environment variable.');
    }
  } catch (e) {
    initFailed(e);
    return;
  }
  state = 'idle';
  send({ t: K_READY, rss: rssKb(), im: performance.now() - t0 }, EMPTY, drainOutput());
}

function initFailed(e) {
  if (state !== 'init') return;
  logError(gen >= 4 ? 'Init Error' : 'Uncaught Exception', e);
  state = 'failed';
  send({ t: K_INIT_ERROR, rss: rssKb() }, Buffer.from(JSON.stringify(errorRecord(e))), drainOutput(),
    () => process.exit(gen >= 4 ? 1 : 129));
}

// ---------------------------------------------------------------------------------------------------------------
// Invoke
function envData() {
  const e = process.env;
  return gen >= 4
    ? { functionName: inv.fn || e.AWS_LAMBDA_FUNCTION_NAME, functionVersion: e.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: e.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, logGroupName: e.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: e.AWS_LAMBDA_LOG_STREAM_NAME }
    : { functionVersion: e.AWS_LAMBDA_FUNCTION_VERSION, functionName: inv.fn || e.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: e.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, logGroupName: e.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: e.AWS_LAMBDA_LOG_STREAM_NAME };
}

function headerData() {
  const deadline = inv.deadline;
  const data = { clientContext: inv.clientContext, identity: undefined, invokedFunctionArn: inv.arn,
    awsRequestId: inv.id, tenantId: undefined };
  if (gen >= 4) data.xRayTraceId = inv.trace;
  data.getRemainingTimeInMillis = () => deadline - Date.now();
  return data;
}

function parseJson(text) {
  if (text === undefined || text === null || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function invoke(m, body) {
  state = 'invoke';
  inv = { id: m.id, deadline: m.dl, arn: m.arn, fn: m.fn, trace: m.tr, clientContext: parseJson(m.cc), meta: m,
    t0: performance.now(), done: false };
  requestId = m.id;
  if (m.tr) process.env._X_AMZN_TRACE_ID = m.tr;
  else delete process.env._X_AMZN_TRACE_ID;
  sock.unref(); // the event loop may drain during the invocation: that is when callback handlers complete (3.x)
  let event;
  try {
    event = body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch (e) {
    failWith(e);
    return;
  }
  if (meta.streaming) invokeStreaming(event);
  else if (gen >= 4) invoke4(event);
  else invoke3(event);
}

function succeedWith(result) {
  let out;
  try {
    out = Buffer.from(JSON.stringify(result === undefined ? null : result));
  } catch {
    failWith(new Error('Unable to stringify response body'));
    return;
  }
  finish(K_RESULT, out, null, false);
}

function failWith(err) {
  if (inv === null || inv.done) return;
  logError('Invoke Error', err);
  const rec = errorRecord(err);
  finish(K_ERROR, Buffer.from(JSON.stringify(rec)), String(rec.errorType), false);
}

function invoke3(event) { // RIC 3.x Runtime.js + CallbackContext.js semantics
  const current = inv;
  let waitForEmptyEventLoop = true;
  let completeInvoked = false;
  const complete = (result) => {
    if (completeInvoked) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    completeInvoked = true;
    if (inv === current) succeedWith(result);
  };
  const postError = (err) => {
    if (inv === current) failWith(err);
  };
  const callback = (err, result) => {
    beforeExit = null;
    if (err !== undefined && err !== null) postError(err);
    else if (!waitForEmptyEventLoop) complete(result);
    else beforeExit = () => setImmediate(() => complete(result));
  };
  const done = (err, result) => {
    beforeExit = null;
    if (err !== undefined && err !== null) postError(err);
    else complete(result);
  };
  let finished = false; // the first of callback/succeed/fail/done wins
  const once = (f) => function (...args) {
    if (!finished) {
      f(...args);
      finished = true;
    }
  };
  const ctx = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: once(done),
  };
  Object.assign(ctx, envData(), headerData());
  const cb = once(callback);
  const isAsync = meta.isAsync;
  beforeExit = () => { // nothing settled the invocation and the event loop is empty
    completeInvoked = true;
    if (isAsync) failWith(new NodeJsExit());
    else succeedWith(null);
  };
  try {
    const r = handler(event, ctx, cb);
    if (r && typeof r.then === 'function') r.then(ctx.succeed, ctx.fail).catch(ctx.fail);
  } catch (e) {
    cb(e);
  }
}

function invoke4(event) { // RIC 4.x: the handler is awaited; its value (also a sync return) is the result
  const current = inv;
  const ctx = Object.assign(headerData(), envData());
  (async () => handler(event, ctx))().then(
    (result) => setImmediate(() => inv === current && succeedWith(result)),
    (err) => setImmediate(() => inv === current && failWith(err)));
}

function invokeStreaming(event) {
  const current = inv;
  const stream = new ResponseStream(meta.highWaterMark ? { highWaterMark: meta.highWaterMark } : undefined);
  const ctx = gen >= 4 ? Object.assign(headerData(), envData()) : Object.assign({}, envData(), headerData());
  const fail = (err) => inv === current && failWith(err);
  let r;
  try {
    r = handler(event, stream, ctx);
  } catch (e) {
    fail(e);
    return;
  }
  if (!r || typeof r.then !== 'function') {
    fail('Streaming does not support non-async handlers.');
    return;
  }
  r.then(async (result) => {
    if (typeof result !== 'undefined') console.warn('Streaming handlers ignore return values.');
    if (!stream.writableEnded) {
      fail('Response stream is not finished.');
      return;
    }
    await require('node:stream/promises').finished(stream);
    if (inv === current) finish(K_RESULT, Buffer.concat(stream.chunks), null, false);
  }, fail);
}

// Allocated bytes under the environment's temp dir (st_blocks, as tmpwatch.py). Walked after every invocation,
// except in the usual case of an empty dir whose mtime has not changed since it was last found empty (and was
// then at least 20 ms old): nothing can have been created in it (one stat instead of a directory listing).
let tmpEmptyAt = -1; // mtime (ns) of the temp dir when it was last found empty
function tmpUsage(root) {
  let mtime = -2;
  try {
    mtime = fs.statSync(root, { bigint: true }).mtimeNs;
  } catch { /* walked below (and found missing) */ }
  if (mtime === tmpEmptyAt) return 0;
  let total = 0, entriesSeen = 0;
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop();
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    entriesSeen += entries.length;
    for (const e of entries) {
      const p = dir + '/' + e.name;
      if (e.isDirectory()) stack.push(p);
      else {
        try {
          total += fs.lstatSync(p).blocks * 512;
        } catch { /* vanished meanwhile */ }
      }
    }
  }
  // File times are coarse (a jiffy): only trust an mtime old enough that a later change must differ from it.
  const settled = typeof mtime === 'bigint' && BigInt(Date.now()) * 1000000n - mtime > 20000000n;
  tmpEmptyAt = entriesSeen === 0 && settled ? mtime : -1;
  return total;
}

function finish(kind, out, et, reset, then) {
  const current = inv;
  if (current === null || current.done) return;
  current.done = true;
  beforeExit = null;
  const d = performance.now() - current.t0;
  const rss = rssKb();
  if (rss > config.memory_mb * 1024) { // peak RSS past the memory size: as the Python worker, die as OOM-killed
    send({ t: K_OOM, rss }, EMPTY, EMPTY, () => process.kill(-process.pid, 'SIGKILL'));
    return;
  }
  if (kind === K_RESULT && out.length > RESPONSE_LIMIT) {
    kind = K_ERROR;
    et = 'Function.ResponseSizeTooLarge';
    reset = true;
    out = Buffer.from(JSON.stringify({ errorMessage: 'Response payload size exceeded maximum allowed payload size '
      + `(${RESPONSE_LIMIT} bytes).`, errorType: et }));
  }
  if (tmpQuota) {
    const usage = tmpUsage(config.tmp);
    if (usage > tmpQuota) {
      kind = K_ERROR;
      et = 'Runtime.EphemeralStorageExceeded';
      reset = true;
      out = Buffer.from(JSON.stringify({ errorType: et, errorMessage: `RequestId: ${current.id} Error: /tmp usage `
        + `${(usage / 1048576).toFixed(1)} MB exceeds the ephemeral storage size of ${tmpQuota / 1048576} MB; the `
        + 'environment was reset and /tmp wiped' }));
    }
  }
  let log = drainOutput();
  if (current.meta.lg) log = logRecord(current.meta, current.id, log, d, rss);
  const m = kind === K_RESULT ? { t: kind, d, rss } : { t: kind, d, rss, et, reset };
  inv = null;
  state = 'idle';
  send(m, out, log, then);
}

// ---------------------------------------------------------------------------------------------------------------
// The NODE_PATH folders of ES-module resolution (layers: see esm_hooks.mjs), fixed when this process started like
// NODE_PATH itself. Registering the hook costs ~60 ms, paid here by a pre-started process rather than by the Init of
// a function; a folder that does not exist (a layer slot the function does not use) is simply not found there.
const esmFolders = (process.env.EDGELAB_ESM_FOLDERS || '').split(':').filter(Boolean);
delete process.env.EDGELAB_ESM_FOLDERS;
if (esmFolders.length) Module.register(pathToFileURL(ESM_HOOKS).href, { data: { folders: esmFolders } });

send({ t: K_HELLO, pid: process.pid, v: process.version, rss: rssKb() });
