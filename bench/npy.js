'use strict';
// Minimal .npy (format 1.0/2.0/3.0) reader and writer for C-order numeric arrays: enough to
// move tensors between Python, octet and ONNX Runtime without any extra package.

const fs = require('fs');

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"

// numpy type code (without byte order) -> [ONNX Runtime tensor type, typed array constructor]
const DTYPES = {
  f4: ['float32', Float32Array],
  f8: ['float64', Float64Array],
  i1: ['int8', Int8Array],
  u1: ['uint8', Uint8Array],
  i2: ['int16', Int16Array],
  u2: ['uint16', Uint16Array],
  i4: ['int32', Int32Array],
  u4: ['uint32', Uint32Array],
  i8: ['int64', BigInt64Array],
  u8: ['uint64', BigUint64Array],
  b1: ['bool', Uint8Array],
};

function fail(path, msg) {
  throw new Error(`${path}: ${msg}`);
}

// Parse the Python-dict header, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }
function parseHeader(path, text) {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) fail(path, `malformed .npy header: ${text.trim()}`);
  if (fortran[1] === 'True') fail(path, 'Fortran-order arrays are not supported');
  const m = /^([<>|=])([a-z]\d+)$/.exec(descr[1]);
  if (!m || !(m[2] in DTYPES)) fail(path, `unsupported dtype '${descr[1]}'`);
  if (m[1] === '>' && m[2] !== 'i1' && m[2] !== 'u1' && m[2] !== 'b1') {
    fail(path, `big-endian dtype '${descr[1]}' is not supported`);
  }
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    if (!/^\d+$/.test(s)) fail(path, `bad dimension '${s}' in shape`);
    return Number(s);
  });
  return { code: m[2], dims };
}

function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) fail(path, 'not a .npy file (bad magic)');
  const major = buf[6];
  let headerLen;
  let offset;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) fail(path, 'truncated .npy header');
    headerLen = buf.readUInt32LE(8);
    offset = 12;
  } else {
    fail(path, `unsupported .npy version ${major}`);
  }
  if (offset + headerLen > buf.length) fail(path, 'truncated .npy header');
  const header = parseHeader(path, buf.toString(major === 3 ? 'utf8' : 'latin1', offset, offset + headerLen));
  const [type, Ctor] = DTYPES[header.code];
  const count = header.dims.reduce((a, b) => a * b, 1);
  const dataStart = offset + headerLen;
  const nbytes = count * Ctor.BYTES_PER_ELEMENT;
  if (!Number.isSafeInteger(nbytes) || buf.length - dataStart !== nbytes) {
    fail(path, `data size ${buf.length - dataStart} bytes does not match shape [${header.dims}] of ${header.code}`);
  }
  // Copy into a fresh, aligned buffer: the file buffer's offset need not be a multiple of the element size.
  const data = new Ctor(count);
  new Uint8Array(data.buffer).set(buf.subarray(dataStart, dataStart + nbytes));
  return { type, dims: header.dims, data: type === 'bool' ? Uint8Array.from(data, (v) => (v ? 1 : 0)) : data };
}

function writeNpy(path, type, dims, data) {
  const code = Object.keys(DTYPES).find((k) => DTYPES[k][0] === type);
  if (!code) fail(path, `cannot write tensor of type '${type}'`);
  const descr = (code === 'i1' || code === 'u1' || code === 'b1' ? '|' : '<') + code;
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad with spaces so that magic + length + header + '\n' is a multiple of 64 bytes.
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  let body;
  if (type === 'bool') body = Buffer.from(Uint8Array.from(data, (v) => (v ? 1 : 0)));
  else body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

module.exports = { readNpy, writeNpy };
