// sdk_test.js — drives our dstack-guest-agent (simulator mode) through the
// official JS SDK (@phala/dstack-sdk, installed by sdk_test.sh) and checks
// every value against the testdata vectors or an independent recomputation
// with node's crypto and the SDK's own crypto dependencies (@noble/*):
// signatures, key derivations (HKDF), report_data hashes, mr_aggregated.
// Methods the SDK does not wrap are called on the wire (raw HTTP on the
// sockets, plain HTTP on the Worker port). Quotes also go through
// `dstack verify`. Prints TAP.
'use strict';
const fs = require('fs');
const http = require('http');
const net = require('net');
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { DstackClient, TappdClient } = require('@phala/dstack-sdk');
const { secp256k1 } = require('@noble/curves/secp256k1');
const { keccak_256, keccak_384, keccak_512 } = require('@noble/hashes/sha3');

let n = 0, failed = 0;
function ok(cond, name) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
}
function is(got, want, name) {
  ok(got === want, name);
  if (got !== want) console.log(`#   got:  ${got}\n#   want: ${want}`);
}
const hex = (u8) => Buffer.from(u8).toString('hex');

function recover(msgHash, sig) {
  return hex(secp256k1.Signature.fromCompact(sig.slice(0, 64)).addRecoveryBit(sig[64])
    .recoverPublicKey(msgHash).toRawBytes(true));
}

// POST raw JSON to a socket (to see server errors the SDK pre-empts, and
// the methods it does not wrap).
function rawPostTo(sock, path, body) {
  return new Promise((resolve, reject) => {
    const c = net.createConnection({ path: sock }, () => {
      c.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
    let data = '';
    c.on('data', (d) => { data += d; });
    c.on('end', () => {
      const i = data.indexOf('\r\n\r\n');
      resolve({ status: parseInt(data.split(' ')[1], 10), body: JSON.parse(data.slice(i + 4)) });
    });
    c.on('error', reject);
  });
}
const rawPost = (path, body) => rawPostTo(process.env.DSTACK_SIMULATOR_ENDPOINT, path, body);
const tappdPost = (path, body) => rawPostTo(process.env.TAPPD_SIMULATOR_ENDPOINT, path, body);

// HTTP on the Worker port: {status, type, text}.
function httpReq(method, url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: body ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const workerCall = async (base, method) => JSON.parse((await httpReq('POST', `${base}/prpc/${method}?json`, '{}')).text);

const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
// `dstack verify` on files in the PKI dir; the parsed report ({} if none).
function dstackVerify(args) {
  const pki = process.env.SIMTEE_DIR;
  try {
    return JSON.parse(execFileSync(process.env.DSTACK,
      ['verify', '--collateral', `${pki}/collateral.json`, '--root-ca', `${pki}/root_ca.pem`, ...args],
      { stdio: ['ignore', 'pipe', 'ignore'] }).toString());
  } catch (e) {
    try { return JSON.parse(e.stdout.toString()); } catch (_) { return {}; }
  }
}
function writeTmp(name, data) {
  const f = `${process.env.SIMTEE_DIR}/../${name}`;
  fs.writeFileSync(f, data);
  return f;
}
// ed25519 public key of a 32-byte seed, and a public key object of raw bytes (node's crypto).
const ED_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const edPublic = (seed) => crypto.createPublicKey(crypto.createPrivateKey(
  { key: Buffer.concat([ED_PKCS8, Buffer.from(seed)]), format: 'der', type: 'pkcs8' }))
  .export({ format: 'der', type: 'spki' }).subarray(12);
const edKey = (raw) => crypto.createPublicKey({ key: Buffer.concat([ED_SPKI, Buffer.from(raw)]), format: 'der', type: 'spki' });

async function main() {
  const client = new DstackClient();
  const APP_ID = '5bb4ff9a3837357f19dc176407a5709c62eb6c56';

  // GetKey vectors (testdata README) and the signature chain.
  const k = await client.getKey('test', 'sdk-test');
  is(hex(k.key), '133e8ca6e532ead3e38f00347408771da296e9c70e8e3e362f485154e64ef4e8', 'getKey(test) vector');
  is(k.signature_chain.length, 2, 'signature chain has 2 signatures');
  const pub = hex(secp256k1.getPublicKey(k.key, true));
  const appPub = recover(keccak_256(Buffer.from(`sdk-test:${pub}`)), k.signature_chain[0]);
  is(appPub, '02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c', 'sig0 recovers the app key');
  const kmsMsg = Buffer.concat([Buffer.from('dstack-kms-issued:'), Buffer.from(APP_ID, 'hex'), Buffer.from(appPub, 'hex')]);
  is(recover(keccak_256(kmsMsg), k.signature_chain[1]),
     '0321529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b6', 'sig1 recovers the KMS key');
  const k2 = await client.getKey('/');
  is(hex(k2.key), 'f6c1ed94488394d78e0a4e5ab75d62e9f085d73b0b555d0614fb90ca13d9464d', 'getKey(/) vector');
  const ked = await client.getKey('test', 'sdk-test', 'ed25519');
  is(hex(ked.key), hex(k.key), 'ed25519 GetKey uses the same derived bytes');
  const bad = await rawPost('/GetKey', JSON.stringify({ path: 'x', algorithm: 'secp256k1_prehashed' }));
  is(bad.body.error, 'Unsupported algorithm', 'GetKey rejects other algorithms');
  const kk = await rawPost('/GetKey', JSON.stringify({ path: 'test', purpose: 'sdk-test', algorithm: 'k256' }));
  is(kk.body.key, hex(k.key), 'GetKey accepts the k256 alias');

  // Tappd DeriveK256Key = GetKey with other field names (same vector, same chain).
  const dk256 = await tappdPost('/prpc/Tappd.DeriveK256Key', JSON.stringify({ path: 'test', purpose: 'sdk-test' }));
  is(dk256.body.k256_key, '133e8ca6e532ead3e38f00347408771da296e9c70e8e3e362f485154e64ef4e8', 'Tappd DeriveK256Key(test) vector');
  ok(Array.isArray(dk256.body.k256_signature_chain) && dk256.body.k256_signature_chain.length === 2 &&
     recover(keccak_256(Buffer.from(`sdk-test:${pub}`)), Buffer.from(dk256.body.k256_signature_chain[0], 'hex')) === appPub &&
     dk256.body.k256_signature_chain[1] === hex(k.signature_chain[1]),
     'Tappd DeriveK256Key signature chain: sig0 by the app key, then the KMS signature');

  // Info: tcb_info parsed by the SDK.
  const info = await client.info();
  is(info.app_id, APP_ID, 'info app_id from the fixture');
  ok(typeof info.tcb_info === 'object' && info.tcb_info.mrtd.length === 96, 'tcb_info parsed, mrtd 48 bytes');
  ok(Array.isArray(info.tcb_info.event_log) && info.tcb_info.event_log.length > 5, 'tcb_info.event_log');
  ok(info.tcb_info.app_compose.includes('guest-agent'), 'tcb_info.app_compose is the raw compose');
  is(info.tcb_info.compose_hash, info.compose_hash, 'compose_hash agrees');
  is(info.compose_hash, '65b4e574f16973956908b6359920593c3b7d9f36f38e81a47f996a0c0d5435bb', 'compose_hash = sha256(raw file)');
  is(JSON.parse(info.key_provider_info).name, 'none', 'key_provider_info');
  // Full log (with digests) replays to the RTMRs.
  const sha384 = (b) => crypto.createHash('sha384').update(b).digest();
  for (let i = 0; i < 4; i++) {
    let mr = Buffer.alloc(48);
    for (const ev of info.tcb_info.event_log.filter((e) => e.imr === i))
      mr = sha384(Buffer.concat([mr, Buffer.from(ev.digest, 'hex')]));
    is(mr.toString('hex'), info.tcb_info[`rtmr${i}`], `event log replays to rtmr${i}`);
  }

  // GetQuote: raw report data, zero padded, no hashing.
  const q = await client.getQuote('hello dstack');
  const rd = Buffer.alloc(64); Buffer.from('hello dstack').copy(rd);
  is(q.report_data, rd.toString('hex'), 'report_data zero padded');
  const quote = Buffer.from(q.quote, 'hex');
  is(quote.subarray(568, 632).toString('hex'), rd.toString('hex'), 'quote carries the report data');
  is(quote.subarray(184, 232).toString('hex'), info.tcb_info.mrtd, 'quote MRTD = info mrtd');
  const rtmrs = q.replayRtmrs();
  for (let i = 0; i < 3; i++) is(rtmrs[i], info.tcb_info[`rtmr${i}`], `stripped log replays rtmr${i}`);
  const qlog = JSON.parse(q.event_log);
  ok(qlog.filter((e) => e.imr === 3).every((e) => e.digest === '' && e.event !== ''), 'runtime events stripped of digest');
  ok(typeof q.vm_config === 'string' && JSON.parse(q.vm_config).os_image_hash.length === 64, 'vm_config');
  const q64 = await client.getQuote(Buffer.alloc(64, 0xab));
  is(q64.report_data, 'ab'.repeat(64), 'GetQuote accepts exactly 64 bytes');
  is(Buffer.from(q64.quote, 'hex').subarray(568, 632).toString('hex'), 'ab'.repeat(64), '64-byte report data in the quote');

  // The GetQuote reply verifies with `dstack verify` (quote + its event_log + vm_config); tampered ones do not.
  const qf = writeTmp('q.hex', q.quote), lf = writeTmp('q-log.json', q.event_log), vf = writeTmp('q-vmc.json', q.vm_config);
  const rep = dstackVerify(['--event-log', lf, '--vm-config', vf, qf]);
  ok(rep.is_valid === true && rep.details && rep.details.quote_verified === true && rep.details.event_log_verified === true,
     `dstack verify accepts the GetQuote reply (${rep.reason || ''})`);
  ok(rep.details && rep.details.report_data === rd.toString('hex'), 'dstack verify reports its report_data');
  ok(rep.details && rep.details.app_info && rep.details.app_info.app_id === APP_ID &&
     rep.details.app_info.compose_hash === info.compose_hash, 'dstack verify: app_id and compose_hash from the event log');
  const badLog = JSON.parse(q.event_log);
  const ch = badLog.find((e) => e.event === 'compose-hash');
  ch.event_payload = 'ff'.repeat(32);
  const repLog = dstackVerify(['--event-log', writeTmp('q-badlog.json', JSON.stringify(badLog)), '--vm-config', vf, qf]);
  ok(repLog.is_valid === false && repLog.details && repLog.details.event_log_verified === false,
     `dstack verify refuses the reply with a tampered compose-hash event (${repLog.reason || ''})`);
  const badQuote = Buffer.from(q.quote, 'hex');
  badQuote[570] ^= 1; // report_data
  const repQuote = dstackVerify(['--event-log', lf, '--vm-config', vf, writeTmp('q-bad.hex', badQuote.toString('hex'))]);
  ok(repQuote.is_valid === false && repQuote.details && repQuote.details.quote_verified === false,
     `dstack verify refuses a quote with one report_data bit flipped (${repQuote.reason || ''})`);

  // Info values against independent computations (guest.md §3.5).
  const sysConfig = JSON.parse(fs.readFileSync(process.env.SYS_CONFIG));
  is(info.app_name, 'guest-agent', 'info app_name = compose name');
  is(info.os_image_hash, JSON.parse(sysConfig.vm_config).os_image_hash, 'info os_image_hash = vm_config os_image_hash');
  is(info.device_id, sha256(Buffer.alloc(0)).toString('hex'), 'info device_id = sha256("") (unverified local quote)');
  const qb = Buffer.from(q.quote, 'hex');
  const cfgParts = [qb.subarray(232, 280), qb.subarray(280, 328), qb.subarray(328, 376)];
  const mrParts = ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'].map((f) => Buffer.from(info.tcb_info[f], 'hex'));
  const withCfg = cfgParts.some((b) => b.some((x) => x !== 0));
  is(info.mr_aggregated, sha256(Buffer.concat(withCfg ? [...mrParts, ...cfgParts] : mrParts)).toString('hex'),
     'info mr_aggregated = sha256(mrtd ‖ rtmr0..3 [‖ config ids])');
  is(info.tcb_info.mr_aggregated, info.mr_aggregated, 'tcb_info mr_aggregated agrees');
  is(info.tcb_info.device_id, info.device_id, 'tcb_info device_id agrees');
  is(info.cloud_vendor, 'dstack-test-vendor', 'info cloud_vendor from DMI');
  is(info.cloud_product, 'dstack-test-product', 'info cloud_product from DMI');
  ok(typeof info.instance_id === 'string' && info.instance_id.length === 40, 'info instance_id 20 bytes');

  let threw = false;
  try { await client.getQuote(Buffer.alloc(65)); } catch (e) { threw = true; }
  ok(threw, 'SDK refuses 65 bytes of report data');
  const big = await rawPost('/GetQuote', JSON.stringify({ report_data: '00'.repeat(65) }));
  is(big.body.error, 'Report data is too long', 'server refuses 65 bytes: Report data is too long');
  is(big.status, 400, 'error status 400');

  // Attest, and the production verifier accepts it (dev root of the simulated TDX).
  const att = await client.attest('abc');
  ok(/^00/.test(att.attestation) && att.attestation.length > 2000, 'attest returns a V0 attestation');
  const pki = process.env.SIMTEE_DIR;
  const attFile = `${pki}/../att.hex`;
  require('fs').writeFileSync(attFile, att.attestation);
  let report = null;
  try {
    report = JSON.parse(require('child_process').execFileSync(process.env.DSTACK,
      ['verify', '--collateral', `${pki}/collateral.json`, '--root-ca', `${pki}/root_ca.pem`, attFile],
      { stdio: ['ignore', 'pipe', 'ignore'] }).toString());
  } catch (e) {
    console.log(`# dstack verify failed: ${e.stdout || e}`);
  }
  ok(report && report.is_valid === true, 'dstack verify accepts the agent attestation');

  // GetTlsKey: random key per call, chain signed by the app CA.
  const t1 = await client.getTlsKey({ subject: 'app.example', altNames: ['app.example', '127.0.0.1'], usageRaTls: true });
  const t2 = await client.getTlsKey({ subject: 'app.example' });
  ok(t1.key.includes('BEGIN PRIVATE KEY') && t1.key !== t2.key, 'fresh PKCS#8 key per call');
  is(t1.certificate_chain.length, 2, 'chain = [leaf, app CA]');
  const leaf = new crypto.X509Certificate(t1.certificate_chain[0]);
  const ca = new crypto.X509Certificate(t1.certificate_chain[1]);
  ok(leaf.verify(ca.publicKey), 'leaf signed by the app CA');
  ok(leaf.subject.includes('CN=app.example'), 'leaf subject');
  ok(leaf.subjectAltName.includes('DNS:app.example') && leaf.subjectAltName.includes('IP Address:127.0.0.1'), 'leaf SANs');
  ok(leaf.publicKey.equals(crypto.createPublicKey(t1.key)), 'leaf key = returned key');
  ok(leaf.raw.includes(Buffer.from([0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xe7, 0x3d, 0x01, 0x08])), 'RA-TLS attestation extension present');
  const badTls = await rawPost('/GetTlsKey', JSON.stringify({ subject: 'x', not_before: 2000, not_after: 1000 }));
  ok(typeof badTls.body.error === 'string', 'not_before >= not_after is an error');

  // Sign / Verify, each signature checked independently (node crypto for
  // ed25519, noble for secp256k1); key = GetKey("vms"), chain = [sig, sig0, kms sig].
  const vms = await client.getKey('vms', 'signing');
  const msg = Buffer.from('message');
  const sEd = await client.sign('ed25519', msg);
  is(hex(sEd.public_key), edPublic(vms.key).toString('hex'), 'ed25519: public key of GetKey(vms) (node crypto)');
  ok(crypto.verify(null, msg, edKey(sEd.public_key), Buffer.from(sEd.signature)), 'ed25519: signature verifies with node crypto');
  const sK = await client.sign('secp256k1', msg);
  is(hex(sK.public_key), hex(secp256k1.getPublicKey(vms.key, true)), 'secp256k1: compressed public key of GetKey(vms)');
  ok(secp256k1.verify(sK.signature, sha256(msg), sK.public_key), 'secp256k1: signature over sha256(data) verifies with noble (low-S)');
  const sAlias = await client.sign('k256', msg);
  ok(hex(sAlias.public_key) === hex(sK.public_key) && secp256k1.verify(sAlias.signature, sha256(msg), sAlias.public_key),
     'k256 alias signs with the secp256k1 key');
  for (const [alg, s] of [['secp256k1', sK], ['ed25519', sEd]]) {
    is(s.signature_chain.length, 3, `${alg}: signature chain of 3`);
    is(hex(s.signature_chain[0]), hex(s.signature), `${alg}: chain[0] is the signature`);
    is(recover(keccak_256(Buffer.from(`signing:${hex(s.public_key)}`)), s.signature_chain[1]),
       '02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c', `${alg}: chain[1] recovers the app key`);
    is(hex(s.signature_chain[2]), hex(k.signature_chain[1]), `${alg}: chain[2] is the KMS signature`);
    const v = await client.verify(alg, msg, s.signature, s.public_key);
    is(v.valid, true, `${alg}: verify valid`);
    const v2 = await client.verify(alg, 'messagf', s.signature, s.public_key);
    is(v2.valid, false, `${alg}: verify tampered invalid`);
  }
  const vAlias = await client.verify('k256', msg, sK.signature, sK.public_key);
  is(vAlias.valid, true, 'Verify accepts the k256 alias');
  const digest = sha256(msg);
  const sp = await client.sign('secp256k1_prehashed', digest);
  ok(secp256k1.verify(sp.signature, digest, sp.public_key), 'prehashed signature verifies with noble');
  is(hex(sp.signature), hex(sK.signature), 'prehashed over sha256(data) = secp256k1 over data (RFC 6979)');
  is((await client.verify('secp256k1_prehashed', digest, sp.signature, sp.public_key)).valid, true, 'Verify prehashed valid');
  is((await client.verify('secp256k1_prehashed', sha256('other'), sp.signature, sp.public_key)).valid, false,
     'Verify prehashed, other digest: invalid');
  const pre = await rawPost('/Sign', JSON.stringify({ algorithm: 'secp256k1_prehashed', data: 'abcd' }));
  is(pre.body.error, 'Pre-hashed signing requires a 32-byte digest, but received 2 bytes', 'prehashed length error');
  const unsup = await rawPost('/Sign', JSON.stringify({ algorithm: 'rsa', data: 'abcd' }));
  is(unsup.body.error, 'Unsupported algorithm', 'Sign: unsupported algorithm');
  const unsupV = await rawPost('/Verify', JSON.stringify({ algorithm: 'p256', data: 'ab', signature: 'ab', public_key: 'ab' }));
  is(unsupV.body.error, 'Unsupported algorithm', 'Verify: unsupported algorithm');
  // Malformed keys and signatures are errors, not {valid:false}.
  const malformed = [
    ['ed25519', hex(sEd.signature), hex(sEd.public_key).slice(2), /public key/i, 'ed25519 31-byte key'],
    ['ed25519', hex(sEd.signature).slice(2), hex(sEd.public_key), /signature/i, 'ed25519 63-byte signature'],
    ['secp256k1', hex(sK.signature), '02' + 'ff'.repeat(32), /public key|verif/i, 'secp256k1 key not on the curve'],
    ['secp256k1', hex(sK.signature), hex(sK.public_key).slice(2), /public key/i, 'secp256k1 32-byte key'],
    ['secp256k1', hex(sK.signature).slice(4), hex(sK.public_key), /signature/i, 'secp256k1 62-byte signature'],
  ];
  for (const [alg, sig, pk, re, what] of malformed) {
    const r = await rawPost('/Verify', JSON.stringify({ algorithm: alg, data: hex(msg), signature: sig, public_key: pk }));
    ok(r.status === 400 && typeof r.body.error === 'string' && re.test(r.body.error) && !('valid' in r.body),
       `Verify ${what}: error (${r.body.error}), not valid:false`);
  }

  // Version, EmitEvent (0.5 SDK), then the event is in the log.
  const ver = await client.version();
  is(ver.version, '0.6.0', 'version');
  await client.emitEvent('sdk-event', 'payload');
  const info2 = await client.info();
  const last = info2.tcb_info.event_log[info2.tcb_info.event_log.length - 1];
  is(last.event, 'sdk-event', 'EmitEvent appended to the log');
  ok(info2.tcb_info.rtmr3 !== info.tcb_info.rtmr3, 'EmitEvent extended RTMR3');

  // Legacy Tappd.
  const tappd = new TappdClient(process.env.TAPPD_SIMULATOR_ENDPOINT);
  const appKeys = JSON.parse(fs.readFileSync(process.env.APPKEYS));
  const dk = await tappd.deriveKey('/tappd', 'tappd.example');
  ok(dk.key.includes('BEGIN PRIVATE KEY') && dk.certificate_chain.length === 2, 'Tappd DeriveKey');
  const dk2 = await tappd.deriveKey('/tappd', 'tappd.example');
  is(dk2.key, dk.key, 'DeriveKey is deterministic per path');
  // P-256 scalar = HKDF-SHA256(k256_key, salt "RATLS", info path, 32) (guest.md §1.4, §2.2).
  const scalar = Buffer.from(crypto.hkdfSync('sha256', Buffer.from(appKeys.k256_key, 'hex'), 'RATLS', '/tappd', 32));
  const jwk = crypto.createPrivateKey(dk.key).export({ format: 'jwk' });
  is(Buffer.from(jwk.d, 'base64url').toString('hex'), scalar.toString('hex'), 'DeriveKey scalar = derive_key(k256_key, [path])');
  ok(new crypto.X509Certificate(dk.certificate_chain[0]).publicKey.equals(crypto.createPublicKey(dk.key)),
     'DeriveKey certificate is for the derived key');
  const dkr = await tappdPost('/prpc/Tappd.DeriveKey', JSON.stringify({ path: '/tappd', subject: 'x', random_seed: true }));
  ok(dkr.body.key && dkr.body.key !== dk.key, 'DeriveKey random_seed: a random key');

  // TdxQuote: report_data = H(tag ":" data) zero padded, for every algorithm.
  const data = Buffer.from('abcd');
  const tagged = (tag) => Buffer.concat([Buffer.from(`${tag}:`), data]);
  const algos = {
    sha256: (b) => sha256(b), sha384: (b) => crypto.createHash('sha384').update(b).digest(),
    sha512: (b) => crypto.createHash('sha512').update(b).digest(),
    'sha3-256': (b) => crypto.createHash('sha3-256').update(b).digest(),
    'sha3-384': (b) => crypto.createHash('sha3-384').update(b).digest(),
    'sha3-512': (b) => crypto.createHash('sha3-512').update(b).digest(),
    keccak256: (b) => Buffer.from(keccak_256(b)), keccak384: (b) => Buffer.from(keccak_384(b)),
    keccak512: (b) => Buffer.from(keccak_512(b)),
  };
  const padded = (h) => { const p = Buffer.alloc(64); h.copy(p); return p.toString('hex'); };
  const rdOf = (r) => Buffer.from(r.quote, 'hex').subarray(568, 632).toString('hex');
  for (const [alg, h] of Object.entries(algos)) {
    const r = await tappd.tdxQuote('abcd', alg);
    ok(rdOf(r) === padded(h(tagged('app-data'))) && r.hash_algorithm === alg && r.prefix === 'app-data',
       `TdxQuote ${alg}: report_data = ${alg}("app-data:" ‖ data), echoes ${alg} and app-data`);
  }
  const tdef = await tappdPost('/prpc/Tappd.TdxQuote', JSON.stringify({ report_data: hex(data) }));
  ok(rdOf(tdef.body) === padded(algos.sha512(tagged('app-data'))) && tdef.body.hash_algorithm === 'sha512',
     'TdxQuote without hash_algorithm: sha512, echoed');
  const tcus = await tappdPost('/prpc/Tappd.TdxQuote', JSON.stringify({ report_data: hex(data), hash_algorithm: 'sha256', prefix: 'my-tag' }));
  ok(rdOf(tcus.body) === padded(sha256(tagged('my-tag'))) && tcus.body.prefix === 'my-tag',
     'TdxQuote with a prefix: sha256("my-tag:" ‖ data), the tag echoed');
  const tq = await tappd.tdxQuote('abcd', 'raw');
  ok(rdOf(tq) === '0'.repeat(120) + hex(data) && tq.hash_algorithm === 'raw' && tq.prefix === '',
     'TdxQuote raw: the SDK-padded 64 bytes as is, echoes raw and ""');
  const traw63 = await tappdPost('/prpc/Tappd.TdxQuote', JSON.stringify({ report_data: '00'.repeat(63), hash_algorithm: 'raw' }));
  ok(typeof traw63.body.error === 'string' && /64 bytes/.test(traw63.body.error), 'TdxQuote raw with 63 bytes: error');
  const tbad = await tappdPost('/prpc/Tappd.TdxQuote', JSON.stringify({ report_data: '00', hash_algorithm: 'md5' }));
  ok(typeof tbad.body.error === 'string', 'TdxQuote unknown hash algorithm: error');
  const rq = await tappdPost('/prpc/Tappd.RawQuote', JSON.stringify({ report_data: 'cd'.repeat(64) }));
  ok(rdOf(rq.body) === 'cd'.repeat(64) && rq.body.hash_algorithm === 'raw' && typeof rq.body.event_log === 'string',
     'Tappd RawQuote: the 64 bytes as report_data');
  const rq2 = await tappdPost('/prpc/Tappd.RawQuote', JSON.stringify({ report_data: 'cd' }));
  ok(typeof rq2.body.error === 'string', 'Tappd RawQuote with 1 byte: error (raw needs 64)');
  const tinfo = await tappdPost('/prpc/Tappd.Info', '{}');
  ok(tinfo.body.app_id === APP_ID && tinfo.body.compose_hash === info.compose_hash && JSON.parse(tinfo.body.tcb_info).mrtd === info.tcb_info.mrtd,
     'Tappd Info: same app as DstackGuest Info');
  const tver = await tappdPost('/prpc/Tappd.Version', '{}');
  is(tver.body.version, '0.6.0', 'Tappd Version');

  // GpuInfo: the attestation file verbatim, "" without one.
  const gpuA = await rawPost('/GpuInfo', '{}');
  if (!fs.existsSync('/run/nvidia-gpu-attestation/attestation.out')) is(gpuA.body.attestation, '', 'GpuInfo without a GPU: ""');
  const gpuB = await rawPostTo(process.env.DSTACK_B_SOCK, '/GpuInfo', '{}');
  is(gpuB.body.attestation, fs.readFileSync(process.env.GPU_FILE, 'latin1'), 'GpuInfo: the attestation file verbatim');

  // Worker (TCP): Version, Info with and without public_tcbinfo, /metrics and /logs gates.
  const wA = process.env.WORKER_URL, wB = process.env.WORKER_B_URL;
  is((await workerCall(wA, 'Worker.Version')).version, '0.6.0', 'Worker Version');
  const wiA = await workerCall(wA, 'Info');
  ok(wiA.app_id === APP_ID && JSON.parse(wiA.tcb_info).mrtd === info.tcb_info.mrtd && wiA.vm_config === q.vm_config,
     'Worker Info (public_tcbinfo true): tcb_info and vm_config shown');
  const wiB = await workerCall(wB, 'Worker.Info');
  ok(wiB.app_id === APP_ID && wiB.tcb_info === '' && wiB.vm_config === '' && wiB.compose_hash.length === 64,
     'Worker Info (public_tcbinfo false): tcb_info and vm_config blanked, the rest shown');
  const mA = await httpReq('GET', `${wA}/metrics`);
  ok(mA.status === 200 && /^dstack_num_cpus \d+$/m.test(mA.text) && /^dstack_total_memory \d+$/m.test(mA.text),
     '/metrics with public_sysinfo: system metrics');
  const mB = await httpReq('GET', `${wB}/metrics`);
  ok(mB.status === 403 && !/dstack_/.test(mB.text), '/metrics without public_sysinfo: refused');
  const lA = await httpReq('GET', `${wA}/logs/app`);
  ok(lA.status === 404, '/logs/<ctr> with public_logs: no such container here');
  const lB = await httpReq('GET', `${wB}/logs/app`);
  ok(lB.status === 403, '/logs/<ctr> without public_logs: refused');

  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`not ok ${n + 1} - SDK threw: ${e && e.stack || e}`);
  console.log(`1..${n + 1}`);
  process.exit(1);
});
