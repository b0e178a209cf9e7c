// sdk_test.js — drives our dstack-guest-agent (simulator mode) through the
// official JS SDK (@phala/dstack-sdk, installed by sdk_test.sh) and checks
// every value against the testdata vectors or an independent recomputation
// with the SDK's own crypto dependencies (@noble/*). Prints TAP.
'use strict';
const net = require('net');
const crypto = require('crypto');
const { DstackClient, TappdClient } = require('@phala/dstack-sdk');
const { secp256k1 } = require('@noble/curves/secp256k1');
const { keccak_256 } = require('@noble/hashes/sha3');

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

// POST raw JSON to the socket (to see server errors the SDK pre-empts).
function rawPost(path, body) {
  return new Promise((resolve, reject) => {
    const c = net.createConnection({ path: process.env.DSTACK_SIMULATOR_ENDPOINT }, () => {
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

  // Sign / Verify.
  for (const alg of ['secp256k1', 'ed25519']) {
    const s = await client.sign(alg, 'message');
    is(s.signature_chain.length, 3, `${alg}: signature chain of 3`);
    const v = await client.verify(alg, 'message', s.signature, s.public_key);
    is(v.valid, true, `${alg}: verify valid`);
    const v2 = await client.verify(alg, 'messagf', s.signature, s.public_key);
    is(v2.valid, false, `${alg}: verify tampered invalid`);
  }
  const digest = crypto.createHash('sha256').update('message').digest();
  const sp = await client.sign('secp256k1_prehashed', digest);
  ok(secp256k1.verify(sp.signature, digest, sp.public_key), 'prehashed signature verifies with noble');
  const pre = await rawPost('/Sign', JSON.stringify({ algorithm: 'secp256k1_prehashed', data: 'abcd' }));
  is(pre.body.error, 'Pre-hashed signing requires a 32-byte digest, but received 2 bytes', 'prehashed length error');

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
  const dk = await tappd.deriveKey('/tappd', 'tappd.example');
  ok(dk.key.includes('BEGIN PRIVATE KEY') && dk.certificate_chain.length === 2, 'Tappd DeriveKey');
  const dk2 = await tappd.deriveKey('/tappd', 'tappd.example');
  is(dk2.key, dk.key, 'DeriveKey is deterministic per path');
  const tq = await tappd.tdxQuote('abcd', 'raw');
  is(tq.hash_algorithm, 'raw', 'TdxQuote echoes raw');
  const tq2 = await tappd.tdxQuote('abcd', 'sha256');
  const want = crypto.createHash('sha256').update('app-data:abcd').digest();
  is(Buffer.from(tq2.quote, 'hex').subarray(568, 600).toString('hex'), want.toString('hex'), 'TdxQuote sha256(app-data:data)');

  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`not ok ${n + 1} - SDK threw: ${e && e.stack || e}`);
  console.log(`1..${n + 1}`);
  process.exit(1);
});
