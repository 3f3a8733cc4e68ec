// `k6/encoding`: base64 of strings.
const H = globalThis.__host;

export function b64encode(input, encoding) {
  return H.b64encode(String(input), encoding || 'std');
}

export function b64decode(input, encoding, format) {
  const text = H.b64decode(String(input), encoding || 'std');
  if (format !== undefined && format !== 's') {
    throw new Error('k6/encoding: b64decode returns strings only here (format "s")');
  }
  return text;
}

export default { b64encode, b64decode };
