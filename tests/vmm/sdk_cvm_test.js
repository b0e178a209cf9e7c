// sdk_cvm_test.js — the official JS SDK (@phala/dstack-sdk) against the
// guest agent of a simulated CVM that booted through dstack-util setup with
// keys from a real dstack-kms (run by procvm_boot_test.sh). Unlike the
// simulator-mode test (tests/guest/sdk_test.js), every value here comes from
// the boot: the app id of the compose, KMS-issued keys whose signature chain
// ends at the KMS's k256 key, an app CA under the KMS root, and quotes of the
// simulated TD that the production verifier accepts. Prints TAP.
// Env: DSTACK_SIMULATOR_ENDPOINT (the VM's dstack.sock), APP_ID, KMS_K256
// (hex, compressed), KMS_ROOT (PEM file), DSTACK (CLI), SIMTEE_DIR (PKI).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const { execFileSync } = require('child_process');
const { DstackClient } = require('@phala/dstack-sdk');
const { secp256k1 } = require('@noble/curves/secp256k1');
const { keccak_256 } = require('@noble/hashes/sha3');

let n = 0;
let failed = 0;
function ok(cond, name) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - sdk on a booted CVM: ${name}`);
}
function is(got, want, name) {
  ok(got === want, name);
  if (got !== want) console.log(`#   got:  ${got}\n#   want: ${want}`);
}
const hex = (u8) => Buffer.from(u8).toString('hex');
const recover = (h, sig) => hex(secp256k1.Signature.fromCompact(sig.slice(0, 64)).addRecoveryBit(sig[64])
  .recoverPublicKey(h).toRawBytes(true));

function verifyAttestation(attHex, tag) {
  const f = `${process.env.SIMTEE_DIR}/../sdk-${tag}.hex`;
  fs.writeFileSync(f, attHex);
  const pki = process.env.SIMTEE_DIR;
  try {
    return JSON.parse(execFileSync(process.env.DSTACK,
      ['verify', '--collateral', `${pki}/collateral.json`, '--root-ca', `${pki}/root_ca.pem`, f],
      { stdio: ['ignore', 'pipe', 'ignore'] }).toString());
  } catch (e) {
    console.log(`# dstack verify: ${e.stdout || e}`);
    return null;
  }
}

async function main() {
  const client = new DstackClient();
  const APP_ID = process.env.APP_ID;

  const info = await client.info();
  is(info.app_id, APP_ID, 'info.app_id is the compose app id');
  ok(/^[0-9a-f]{40}$/.test(info.instance_id), 'info.instance_id set by setup');
  ok(typeof info.tcb_info === 'object' && info.tcb_info.mrtd.length === 96, 'tcb_info parsed (mrtd 48 bytes)');
  is(JSON.parse(info.key_provider_info).name, 'kms', 'key provider is the KMS');
  const sha384 = (b) => crypto.createHash('sha384').update(b).digest();
  let mr = Buffer.alloc(48);
  for (const ev of info.tcb_info.event_log.filter((e) => e.imr === 3))
    mr = sha384(Buffer.concat([mr, Buffer.from(ev.digest, 'hex')]));
  is(mr.toString('hex'), info.tcb_info.rtmr3, 'the boot\'s runtime events replay to RTMR3');
  const names = info.tcb_info.event_log.filter((e) => e.imr === 3).map((e) => e.event);
  ok(['compose-hash', 'key-provider', 'system-ready'].every((x) => names.includes(x)),
    `setup's events are in the log (${names.join(',')})`);

  const k = await client.getKey('wallet/eth', 'sdk');
  is(k.signature_chain.length, 2, 'getKey: signature chain of 2');
  const pub = hex(secp256k1.getPublicKey(k.key, true));
  const appPub = recover(keccak_256(Buffer.from(`sdk:${pub}`)), k.signature_chain[0]);
  const kmsMsg = Buffer.concat([Buffer.from('dstack-kms-issued:'), Buffer.from(APP_ID, 'hex'),
    Buffer.from(appPub, 'hex')]);
  is(recover(keccak_256(kmsMsg), k.signature_chain[1]), process.env.KMS_K256,
    'the chain ends at the KMS k256 key (GetMeta)');
  const k2 = await client.getKey('wallet/eth', 'sdk');
  is(hex(k2.key), hex(k.key), 'getKey is deterministic for one path');

  const q = await client.getQuote('hello cvm');
  const rd = Buffer.alloc(64);
  Buffer.from('hello cvm').copy(rd);
  is(q.report_data, rd.toString('hex'), 'getQuote: report data zero padded');
  is(Buffer.from(q.quote, 'hex').subarray(184, 232).toString('hex'), info.tcb_info.mrtd, 'quote MRTD = info mrtd');
  let threw = false;
  try { await client.getQuote(Buffer.alloc(65)); } catch (e) { threw = true; }
  ok(threw, 'SDK refuses 65 bytes of report data');

  const att = await client.attest('cvm');
  const rep = verifyAttestation(att.attestation, 'attest');
  ok(rep && rep.is_valid === true, 'dstack verify accepts the CVM attestation');
  is(rep && rep.details && rep.details.app_info && rep.details.app_info.app_id, APP_ID,
    'verified attestation names the app');

  const t = await client.getTlsKey({ subject: 'cvm.example', altNames: ['cvm.example'], usageRaTls: true });
  is(t.certificate_chain.length, 3, 'getTlsKey (KMS SignCert): chain = [leaf, app CA, KMS root]');
  const leaf = new crypto.X509Certificate(t.certificate_chain[0]);
  const appCa = new crypto.X509Certificate(t.certificate_chain[1]);
  const root = new crypto.X509Certificate(fs.readFileSync(process.env.KMS_ROOT));
  ok(leaf.verify(appCa.publicKey), 'leaf signed by the app CA');
  ok(appCa.verify(root.publicKey), 'app CA issued by the KMS root');
  ok(new crypto.X509Certificate(t.certificate_chain[2]).raw.equals(root.raw), 'last in the chain is the KMS root');
  ok(leaf.publicKey.equals(crypto.createPublicKey(t.key)), 'leaf key = returned key');
}

main().catch((e) => { ok(false, `unexpected: ${e.stack || e}`); }).finally(() => {
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
});
