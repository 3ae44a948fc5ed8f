#!/usr/bin/env node
// A tongban client in Node.js: one ecert.fetch through a running hub, every
// signature checked with Node's own crypto. Nothing here comes from tongban's
// Python code: only the .proto files (../../proto) and the PKI directory.
//
//   node client.js --hub 127.0.0.1:7000 --pki ../../pki --from 440000 \
//       --holder 370200197707126093 --type 11100000000013338W001
//
// What it does, in order:
//  1. mTLS to the hub as province --from (its tls.crt + intermediate, tls.key),
//     checking that the hub presents node-000000.tongban.test from the national root.
//  2. HubService.GetDirectory: the signed directory. Its signature is checked with
//     the hub's signing certificate, itself checked against the hub's intermediate
//     and the national root (pki/ca/root.crt, the only thing trusted up front).
//  3. Seals an EcertFetchRequest: a valid Header (message id, sender, empty
//     receiver = "route by subject", issued/expires within the directory policy,
//     32-hex W3C trace id, 用证事由, 五要素), signed with the province's sign.key
//     over DSSE's PAE (ECDSA P-256 SHA-256 DER, or Ed25519).
//  4. HubService.Exchange, with a W3C `traceparent` metadata entry built from the
//     header's trace id.
//  5. Verifies the answer: the answering province's signing key is one the
//     directory vouches for (chain to the root, not revoked), the signature over
//     the PAE, the binding (receiver = us, request_digest = SHA-256 of our PAE,
//     same trace id, not expired), and then the e-certificate inside, signed by
//     the province's issuing authority (chain to the root as well).
//
// Exit status: 0 verified, 1 something failed verification or the call, 2 usage.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { parseArgs } = require("node:util");

const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const HUB = "000000";
const ECERT_REQUEST = "application/vnd.tongban.ecert-request.v1+proto";
const ECERT_RESPONSE = "application/vnd.tongban.ecert-response.v1+proto";
const ECERT = "application/vnd.tongban.ecert.v1+proto";
const DIRECTORY = "application/vnd.tongban.directory.v1+proto";
const PROTO_FILES = ["tongban/v1/services.proto", "tongban/v1/ecert.proto", "tongban/v1/directory.proto"];

class VerificationError extends Error {}

function usage(msg) {
  process.stderr.write(`client.js: ${msg}\n` +
    "usage: node client.js --hub HOST:PORT --pki DIR --holder ID --type CODE [--from CODE] [--proto DIR] " +
    "[--purpose TEXT] [--timeout-ms N]\n");
  process.exit(2);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        hub: { type: "string" },
        pki: { type: "string" },
        from: { type: "string", default: "440000" },
        holder: { type: "string" },
        type: { type: "string" },
        proto: { type: "string", default: path.join(__dirname, "..", "..", "proto") },
        purpose: { type: "string", default: "Node.js 示例客户端: 异地办事核验电子证照" },
        "timeout-ms": { type: "string", default: "10000" },
      },
    }));
  } catch (e) {
    usage(e.message);
  }
  for (const k of ["hub", "pki", "holder", "type"]) if (!values[k]) usage(`--${k} is required`);
  if (!/^[0-9]{6}$/.test(values.from)) usage(`--from: expected a six-digit node code, found ${values.from}`);
  return values;
}

// -- DSSE --------------------------------------------------------------------
/** DSSE v1 Pre-Authentication Encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
function pae(payloadType, payload) {
  const t = Buffer.from(payloadType, "utf8");
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), payload]);
}

/** keyid: hex SHA-256 of the DER SubjectPublicKeyInfo. */
function keyId(publicKey) {
  return crypto.createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex");
}

function digestFor(key) {
  // ECDSA P-256 signs SHA-256 (DER signatures, Node's default); Ed25519 takes no digest.
  return key.asymmetricKeyType === "ed25519" ? null : "sha256";
}

function sign(data, privateKey) {
  return crypto.sign(digestFor(privateKey), data, privateKey);
}

// -- X.509 -------------------------------------------------------------------
function checkValidity(cert, what, now) {
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
    throw new VerificationError(`${what}: valid ${cert.validFrom} .. ${cert.validTo}, it is now ${now.toISOString()}`);
  }
}

/** The leaf certificate's public key, once leaf <- intermediate <- root checks out. */
function verifiedKey({ leafDer, intermediateDer, root, what, now }) {
  const inter = new crypto.X509Certificate(intermediateDer);
  const leaf = new crypto.X509Certificate(leafDer);
  if (!inter.ca) throw new VerificationError(`${what}: intermediate ${inter.subject} is not a CA`);
  if (!inter.checkIssued(root) || !inter.verify(root.publicKey)) {
    throw new VerificationError(`${what}: intermediate ${inter.subject} is not signed by the national root`);
  }
  if (!leaf.checkIssued(inter) || !leaf.verify(inter.publicKey)) {
    throw new VerificationError(`${what}: certificate ${leaf.subject} is not signed by ${inter.subject}`);
  }
  checkValidity(root, "national root", now);
  checkValidity(inter, `${what} intermediate`, now);
  checkValidity(leaf, what, now);
  return leaf.publicKey;
}

/** Check a DSSE envelope's single signature with `publicKey`; returns the keyid. */
function verifyEnvelope(env, publicKey, what) {
  if (env.signatures.length !== 1) {
    throw new VerificationError(`${what}: expected exactly one signature, found ${env.signatures.length}`);
  }
  const sig = env.signatures[0];
  const want = keyId(publicKey);
  if (sig.keyid !== want) throw new VerificationError(`${what}: signed by key ${sig.keyid}, expected ${want}`);
  const ok = crypto.verify(digestFor(publicKey), pae(env.payload_type, env.payload), publicKey, sig.sig);
  if (!ok) throw new VerificationError(`${what}: signature by key ${sig.keyid.slice(0, 16)}… does not verify`);
  return sig.keyid;
}

// -- protobuf ----------------------------------------------------------------
function loadProtos(protoDir) {
  const loaderOpts = { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [protoDir] };
  const grpcDef = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILES, loaderOpts));
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    const local = path.join(protoDir, target);
    return fs.existsSync(local) ? local : target; // google/protobuf/*: protobufjs's bundled copies
  };
  root.loadSync(PROTO_FILES, { keepCase: true });
  const T = (name) => root.lookupType(`tongban.v1.${name}`);
  return { grpcDef, types: { EcertFetchRequest: T("EcertFetchRequest"), EcertFetchResponse: T("EcertFetchResponse"),
    ECertificate: T("ECertificate"), Directory: T("Directory") } };
}

function decode(type, bytes) {
  return type.toObject(type.decode(bytes), { longs: Number, enums: String, defaults: true });
}

function timestamp(ms) {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function toMs(ts) {
  return Number(ts.seconds) * 1000 + Math.floor((ts.nanos || 0) / 1_000_000);
}

function unary(client, method, request, metadata, timeoutMs) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + timeoutMs }, (err, reply) =>
      err ? reject(err) : resolve(reply));
  });
}

// -- the flow ----------------------------------------------------------------
async function main() {
  const o = options();
  const pki = o.pki;
  const me = o.from;
  const read = (...p) => {
    const file = path.join(pki, ...p);
    try {
      return fs.readFileSync(file);
    } catch (e) {
      return usage(`--pki: cannot read ${file} (${e.code || e.message}); expected a directory made by tongban pki init`);
    }
  };
  const rootPem = read("ca", "root.crt");
  const root = new crypto.X509Certificate(rootPem);
  // Present the TLS leaf with its intermediate: the hub trusts only the national root.
  const chainPem = Buffer.concat([read("nodes", me, "tls.crt"), read("nodes", me, "chain.pem")]);
  const tlsKey = read("nodes", me, "tls.key");
  const signKey = crypto.createPrivateKey(read("nodes", me, "sign.key"));
  const timeoutMs = Number(o["timeout-ms"]);

  const { grpcDef, types } = loadProtos(o.proto);
  const creds = grpc.credentials.createSsl(rootPem, tlsKey, chainPem);
  const hub = new grpcDef.tongban.v1.HubService(o.hub, creds, {
    "grpc.ssl_target_name_override": `node-${HUB}.tongban.test`,
    "grpc.default_authority": `node-${HUB}.tongban.test`,
  });
  try {
    const now = new Date();
    // 1-2. The signed directory, checked from the root down.
    const dirReply = await unary(hub, "GetDirectory", { known_version: 0 }, new grpc.Metadata(), timeoutMs);
    const dirEnv = dirReply.directory;
    if (dirEnv.payload_type !== DIRECTORY) throw new VerificationError(`directory: payload type ${dirEnv.payload_type}`);
    const directory = decode(types.Directory, dirEnv.payload);
    const members = new Map(directory.members.map((m) => [m.code, m]));
    const revoked = new Set(directory.revocations.map((r) => r.keyid));
    const hubMember = members.get(HUB);
    if (!hubMember) throw new VerificationError("directory: expected the hub 000000 among its members");
    const hubKey = hubMember.signing_keys.map((k) => verifiedKey({ leafDer: k.certificate,
      intermediateDer: hubMember.intermediate_certificate, root, what: "hub signing certificate", now }))[0];
    verifyEnvelope(dirEnv, hubKey, "directory");
    const validUntil = toMs(directory.valid_until);
    if (now.getTime() > validUntil) throw new VerificationError(`directory v${directory.version} expired`);
    console.log(`directory v${directory.version}: ${members.size} members, signed by the hub ` +
      `(key ${keyId(hubKey).slice(0, 8)}…), chain to the national root verified`);

    // 3. Seal the request.
    const policy = directory.policy;
    const lifetimeMs = Math.min(30_000, Number(policy.max_message_lifetime_ms));
    const traceId = crypto.randomBytes(16).toString("hex");
    const spanId = crypto.randomBytes(8).toString("hex");
    const issued = Date.now();
    const header = {
      message_id: crypto.randomUUID(),
      sender: me,
      receiver: "", // route by subject: the hub finds the holder's home province
      issued_at: timestamp(issued),
      expires_at: timestamp(issued + lifetimeMs),
      purpose: o.purpose.slice(0, 200),
      audit: { organisation: `${me} 政务服务中心`, operator: "node-example", item_name: "电子证照核验",
        item_code: "", business_serial: `NODE-${Date.now()}` },
      trace_id: traceId,
      subject: { holder_id: o.holder, cert_type: o.type },
    };
    const errMsg = types.EcertFetchRequest.verify({ header });
    if (errMsg) throw new Error(`EcertFetchRequest: ${errMsg}`);
    const payload = Buffer.from(types.EcertFetchRequest.encode(types.EcertFetchRequest.create({ header })).finish());
    const sig = sign(pae(ECERT_REQUEST, payload), signKey);
    const myKeyId = keyId(crypto.createPublicKey(signKey));
    const request = { payload_type: ECERT_REQUEST, payload, signatures: [{ keyid: myKeyId, sig }] };
    const requestDigest = crypto.createHash("sha256").update(pae(ECERT_REQUEST, payload)).digest();
    console.log(`sealed ecert.fetch ${header.message_id} from ${me} (key ${myKeyId.slice(0, 8)}…), ` +
      `trace ${traceId}`);

    // 4. Exchange, with W3C trace context in the metadata.
    const md = new grpc.Metadata();
    md.set("traceparent", `00-${traceId}-${spanId}-01`);
    const t0 = process.hrtime.bigint();
    const reply = await unary(hub, "Exchange", { envelope: request }, md, timeoutMs);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const resp = reply.envelope;

    // 5. Verify the answer end to end.
    if (resp.payload_type !== ECERT_RESPONSE) {
      throw new VerificationError(`response: payload type ${resp.payload_type}, expected ${ECERT_RESPONSE}`);
    }
    const answer = decode(types.EcertFetchResponse, resp.payload);
    const h = answer.header;
    const responder = members.get(h.sender);
    if (!responder || h.sender === HUB) throw new VerificationError(`response from ${h.sender}: not a province`);
    const keyid = resp.signatures[0] && resp.signatures[0].keyid;
    const vouched = responder.signing_keys.find((k) => k.keyid === keyid);
    if (!vouched) throw new VerificationError(`response signed by key ${keyid}, not one the directory vouches for ${h.sender}`);
    if (revoked.has(keyid)) throw new VerificationError(`response signed by revoked key ${keyid}`);
    const responderKey = verifiedKey({ leafDer: vouched.certificate, intermediateDer: responder.intermediate_certificate,
      root, what: `${h.sender} signing certificate`, now });
    verifyEnvelope(resp, responderKey, `response from ${h.sender}`);
    if (h.receiver !== me) throw new VerificationError(`response addressed to ${h.receiver}, expected ${me}`);
    if (!Buffer.from(h.request_digest).equals(requestDigest)) {
      throw new VerificationError("response request_digest is not the SHA-256 of our request's PAE");
    }
    if (h.trace_id !== traceId) throw new VerificationError(`response trace ${h.trace_id}, expected ${traceId}`);
    if (Date.now() > toMs(h.expires_at) + Number(policy.max_clock_skew_ms)) {
      throw new VerificationError("response expired");
    }
    const catalogue = directory.catalogue.find((c) => c.cert_type === o.type);
    if (!catalogue || !catalogue.issuers.includes(h.sender)) {
      throw new VerificationError(`${h.sender} is not a catalogued issuer of type ${o.type}`);
    }
    console.log(`response ${h.message_id} from ${h.sender} in ${ms.toFixed(1)} ms: signature of ${h.sender} ` +
      `key ${keyid.slice(0, 8)}… verified, chain to the national root verified, bound to our request`);
    console.log(`status ${answer.status}${answer.detail ? ": " + answer.detail : ""}`);

    if (answer.status === "FETCH_STATUS_OK") {
      const certEnv = answer.certificate;
      if (certEnv.payload_type !== ECERT) throw new VerificationError(`certificate: payload type ${certEnv.payload_type}`);
      const issuerKey = verifiedKey({ leafDer: responder.issuer_certificate,
        intermediateDer: responder.intermediate_certificate, root, what: `${h.sender} issuing authority`, now });
      const issuerKeyId = verifyEnvelope(certEnv, issuerKey, "e-certificate");
      if (revoked.has(issuerKeyId)) throw new VerificationError(`e-certificate signed by revoked key ${issuerKeyId}`);
      const cert = decode(types.ECertificate, certEnv.payload);
      if (cert.holder_code !== o.holder || cert.type_code !== o.type) {
        throw new VerificationError(`e-certificate is for ${cert.holder_code} type ${cert.type_code}, ` +
          `expected ${o.holder} type ${o.type}`);
      }
      console.log(`e-certificate ${cert.identifier} (${cert.type_name}), state ${cert.state}, ` +
        `holder ${cert.holder_name}: signed by ${h.sender}'s issuing authority (key ${issuerKeyId.slice(0, 8)}…), verified`);
    }
    console.log(`traceparent 00-${traceId}-${spanId}-01`);
    console.log("OK: every signature verified with Node's crypto");
    return 0;
  } finally {
    hub.close();
  }
}

main().then((code) => { process.exitCode = code; }, (err) => {
  if (err instanceof VerificationError) {
    process.stderr.write(`client.js: verification failed: ${err.message}\n`);
  } else if (err && err.code !== undefined && err.details !== undefined) {
    process.stderr.write(`client.js: ${grpc.status[err.code] || err.code}: ${err.details}\n`);
  } else {
    process.stderr.write(`client.js: ${err && err.stack ? err.stack : err}\n`);
  }
  process.exitCode = 1;
});
