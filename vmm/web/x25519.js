// x25519.js — browser-side env encryption for the dstack-vmm console
// (spec vmm.md §13): eph_pub(32) || iv(12) || AES-256-GCM(ct || tag), the key
// being the raw X25519 shared secret. WebCrypto X25519 is used when the
// browser has it; otherwise a small BigInt Montgomery ladder (RFC 7748).
// AES-GCM always comes from WebCrypto (needs a secure context: localhost
// or HTTPS).
'use strict';
const DstackX25519 = (() => {
  const P = (1n << 255n) - 19n;
  const A24 = 121665n;
  const mod = (a) => { a %= P; return a < 0n ? a + P : a; };
  const inv = (b) => {
    let r = 1n, e = P - 2n; b = mod(b);
    while (e > 0n) { if (e & 1n) r = (r * b) % P; b = (b * b) % P; e >>= 1n; }
    return r;
  };
  const le2big = (u8) => { let r = 0n; for (let i = u8.length - 1; i >= 0; i--) r = (r << 8n) | BigInt(u8[i]); return r; };
  const big2le = (n) => { const o = new Uint8Array(32); for (let i = 0; i < 32; i++) { o[i] = Number(n & 255n); n >>= 8n; } return o; };
  function ladder(scalar, point) {
    const s = Uint8Array.from(scalar);
    s[0] &= 248; s[31] &= 127; s[31] |= 64;
    const k = le2big(s);
    const u = Uint8Array.from(point); u[31] &= 127;
    const x1 = mod(le2big(u));
    let x2 = 1n, z2 = 0n, x3 = x1, z3 = 1n, swap = 0n;
    for (let t = 254n; t >= 0n; t--) {
      const bit = (k >> t) & 1n;
      if (swap ^ bit) { [x2, x3] = [x3, x2]; [z2, z3] = [z3, z2]; }
      swap = bit;
      const a = mod(x2 + z2), aa = (a * a) % P, b = mod(x2 - z2), bb = (b * b) % P, e = mod(aa - bb);
      const c = mod(x3 + z3), d = mod(x3 - z3), da = (d * a) % P, cb = (c * b) % P;
      const sum = mod(da + cb), diff = mod(da - cb);
      x3 = (sum * sum) % P;
      z3 = (x1 * ((diff * diff) % P)) % P;
      x2 = (aa * bb) % P;
      z2 = (e * mod(aa + A24 * e)) % P;
    }
    if (swap) { [x2, x3] = [x3, x2]; [z2, z3] = [z3, z2]; }
    return big2le((x2 * inv(z2)) % P);
  }
  const BASE = new Uint8Array(32); BASE[0] = 9;
  async function webcryptoShared(peer) {
    const kp = await crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
    const pub = new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey));
    const peerKey = await crypto.subtle.importKey('raw', peer, { name: 'X25519' }, false, []);
    const bits = await crypto.subtle.deriveBits({ name: 'X25519', public: peerKey }, kp.privateKey, 256);
    return { pub, shared: new Uint8Array(bits) };
  }
  // Which implementation the last encryption used ('webcrypto' or 'ladder'):
  // the console test checks that Chromium takes the WebCrypto path.
  let lastPath = '';
  async function ephemeralShared(peer) {
    try {
      const r = await webcryptoShared(peer);
      lastPath = 'webcrypto';
      return r;
    } catch (e) { /* no WebCrypto X25519 here */ }
    const sk = crypto.getRandomValues(new Uint8Array(32));
    lastPath = 'ladder';
    return { pub: ladder(sk, BASE), shared: ladder(sk, peer) };
  }
  const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
  const unhex = (s) => {
    s = s.replace(/^0x/i, '');
    if (s.length % 2 || /[^0-9a-f]/i.test(s)) throw new Error('invalid hex');
    const o = new Uint8Array(s.length / 2);
    for (let i = 0; i < o.length; i++) o[i] = parseInt(s.substr(i * 2, 2), 16);
    return o;
  };
  // envs: [{key, value}], pubHex: the KMS env-encryption public key. Returns hex.
  async function encryptEnv(envs, pubHex) {
    const peer = unhex(pubHex);
    if (peer.length !== 32) throw new Error('public key must be 32 bytes');
    const { pub, shared } = await ephemeralShared(peer);
    const key = await crypto.subtle.importKey('raw', shared, { name: 'AES-GCM' }, false, ['encrypt']);
    shared.fill(0);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const pt = new TextEncoder().encode(JSON.stringify({ env: envs }));
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, pt));
    const out = new Uint8Array(32 + 12 + ct.length);
    out.set(pub, 0); out.set(iv, 32); out.set(ct, 44);
    return hex(out);
  }
  return { ladder, encryptEnv, hex, unhex, lastPath: () => lastPath };
})();
