// `k6/encoding`: base64 of strings and bytes.
const H = globalThis.__host;

export function b64encode(input, encoding) {
  // A string never asks `ArrayBuffer`, which would make the typed arrays.
  const bytes = typeof input === 'object' && input !== null
    && (input instanceof ArrayBuffer || ArrayBuffer.isView(input));
  const data = bytes ? input : String(input);
  return H.b64encode(data, encoding || 'std');
}

// As in k6: an ArrayBuffer, or a string with format "s".
export function b64decode(input, encoding, format) {
  if (format !== undefined && format !== 's') {
    throw new Error(`k6/encoding: b64decode's format is "s" (a string) or left out (an ArrayBuffer), not ${JSON.stringify(format)}`);
  }
  return H.b64decode(String(input), encoding || 'std', format === 's');
}

export default { b64encode, b64decode };
