// `k6/crypto`: hashes and HMACs computed by the host functions; `data` is
// a string (hashed as UTF-8) or an ArrayBuffer.
const H = globalThis.__host;

const digest = (algorithm) => (data, encoding) => H.hash(algorithm, [data], encoding || 'binary');

export const md5 = digest('md5');
export const sha1 = digest('sha1');
export const sha256 = digest('sha256');
export const sha384 = digest('sha384');
export const sha512 = digest('sha512');
export const sha512_224 = digest('sha512_224');
export const sha512_256 = digest('sha512_256');

export function hmac(algorithm, secret, data, encoding) {
  return H.hmac(String(algorithm), secret, [data], encoding || 'binary');
}

// Hashers with update()/digest(), as k6 returns them.
function hasher(finish) {
  const parts = [];
  return {
    update(data) {
      parts.push(data);
      return this;
    },
    digest(encoding) {
      return finish(parts, encoding || 'binary');
    },
  };
}

export function createHash(algorithm) {
  return hasher((parts, encoding) => H.hash(String(algorithm), parts, encoding));
}

export function createHMAC(algorithm, secret) {
  return hasher((parts, encoding) => H.hmac(String(algorithm), secret, parts, encoding));
}

export function randomBytes(n) {
  return H.randomBytes(Number(n));
}

export default {
  md5, sha1, sha256, sha384, sha512, sha512_224, sha512_256, hmac, createHash, createHMAC, randomBytes,
};
