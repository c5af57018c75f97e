import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import forge from 'node-forge';

/**
 * Certificates for the lab and the tests, made at run time so that no private key is ever
 * committed: a test CA and server certificates it signs. Node can parse X.509 but not issue it,
 * so the keys come from node:crypto and the certificates from node-forge (pure JavaScript: it works
 * where no openssl command is installed, as in the lab's images).
 */

/** Every server certificate of the lab is valid for these: a balancer or a backend on this machine. */
export const LOCAL_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1'];

export interface ServerCertFiles {
  cert: string;
  key: string;
}

export interface CertFiles extends ServerCertFiles {
  caCert: string;
  /** the second server certificate, when secondNames asked for one */
  second?: ServerCertFiles;
}

export interface CertOptions {
  /** names (DNS or IP) the server certificate is valid for beyond LOCAL_NAMES, e.g. `balancer` in containers */
  extraNames?: readonly string[];
  /** a second server certificate valid for these names only: another virtual host (SNI), or a backend with the wrong name */
  secondNames?: readonly string[];
}

const CA_DAYS = 3650;
const SERVER_DAYS = 365;
/** A certificate that expires sooner than this is made again. */
const RENEW_BEFORE_MS = 24 * 3600_000;
/** A lock older than this was left by a process that died while creating: it is taken over. */
const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 60_000;

const FILES = {
  caCert: 'ca.pem',
  caKey: 'ca-key.pem',
  cert: 'lab.pem',
  key: 'lab-key.pem',
  secondCert: 'second.pem',
  secondKey: 'second-key.pem',
} as const;

const DNS_NAME = /^(?=.{1,253}$)(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * ensureCerts makes, in dir, whatever is missing, expiring or inconsistent: the CA (ca.pem,
 * ca-key.pem), the server certificate for LOCAL_NAMES and extraNames (lab.pem, lab-key.pem) and,
 * with secondNames, a second one (second.pem, second-key.pem). Files that are still good are kept,
 * so every run of the lab trusts the same CA. Keys are mode 0600. Concurrent callers on the same
 * dir wait for each other.
 */
export async function ensureCerts(dir: string, options: CertOptions = {}): Promise<CertFiles> {
  const names = unique([...LOCAL_NAMES, ...(options.extraNames ?? [])]);
  const secondNames = options.secondNames && options.secondNames.length > 0 ? unique(options.secondNames) : undefined;
  checkNames([...names, ...(secondNames ?? [])]);
  const file = (name: keyof typeof FILES): string => path.join(dir, FILES[name]);
  await mkdir(dir, { recursive: true });
  await withLock(path.join(dir, '.creating'), async (work) => {
    let ca = await usableCa(file('caCert'), file('caKey'));
    if (!ca) {
      await createCa(work, file('caCert'), file('caKey'));
      ca = new X509Certificate(await readFile(file('caCert')));
    }
    if (!(await usableServerCert(file('cert'), file('key'), ca, names))) {
      await createServerCert(work, file('cert'), file('key'), file('caCert'), file('caKey'), names);
    }
    if (secondNames && !(await usableServerCert(file('secondCert'), file('secondKey'), ca, secondNames))) {
      await createServerCert(work, file('secondCert'), file('secondKey'), file('caCert'), file('caKey'), secondNames);
    }
  });
  return {
    caCert: file('caCert'),
    cert: file('cert'),
    key: file('key'),
    ...(secondNames ? { second: { cert: file('secondCert'), key: file('secondKey') } } : {}),
  };
}

/**
 * issueServerCert signs with the CA of dir (made by ensureCerts first) one more server certificate
 * for names, valid for days from now, as `<basename>.pem` and `<basename>-key.pem`. A negative
 * days gives one that has already expired, for tests.
 */
export async function issueServerCert(dir: string, basename: string, names: readonly string[], days: number): Promise<ServerCertFiles> {
  if (!/^[a-z0-9-]+$/.test(basename) || (Object.values(FILES) as string[]).includes(`${basename}.pem`)) throw new Error(`issueServerCert: ${basename} is not a file name of its own`);
  checkNames(names);
  const files = { cert: path.join(dir, `${basename}.pem`), key: path.join(dir, `${basename}-key.pem`) };
  await withLock(path.join(dir, '.creating'), (work) =>
    createServerCert(work, files.cert, files.key, path.join(dir, FILES.caCert), path.join(dir, FILES.caKey), unique(names), days),
  );
  return files;
}

function checkNames(names: readonly string[]): void {
  for (const name of names) {
    if (isIP(name) === 0 && !DNS_NAME.test(name)) throw new Error(`certificates: ${JSON.stringify(name)} is neither a DNS name nor an IP address`);
  }
}

function unique(names: readonly string[]): string[] {
  return [...new Set(names.map((name) => name.toLowerCase()))];
}

async function readIfPresent(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function lastsLongEnough(cert: X509Certificate): boolean {
  const now = Date.now();
  return cert.validFromDate.getTime() <= now && cert.validToDate.getTime() - now > RENEW_BEFORE_MS;
}

/** matchesKey: the key file holds the private key of the certificate (and is mode 0600, made so if not). */
async function matchesKey(cert: X509Certificate, keyFile: string): Promise<boolean> {
  const key = await readIfPresent(keyFile);
  if (!key) return false;
  try {
    if (!cert.checkPrivateKey(createPrivateKey(key))) return false;
  } catch {
    return false;
  }
  if (((await stat(keyFile)).mode & 0o777) !== 0o600) await chmod(keyFile, 0o600);
  return true;
}

function parse(pem: Buffer | undefined): X509Certificate | undefined {
  if (!pem) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

async function usableCa(certFile: string, keyFile: string): Promise<X509Certificate | undefined> {
  const ca = parse(await readIfPresent(certFile));
  if (!ca || !ca.ca || !lastsLongEnough(ca) || !(await matchesKey(ca, keyFile))) return undefined;
  return ca;
}

async function usableServerCert(certFile: string, keyFile: string, ca: X509Certificate, names: readonly string[]): Promise<boolean> {
  const cert = parse(await readIfPresent(certFile));
  if (!cert || !lastsLongEnough(cert) || !cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
  if (!names.every((name) => (isIP(name) ? cert.checkIP(name) : cert.checkHost(name, { wildcards: false })) !== undefined)) return false;
  return matchesKey(cert, keyFile);
}

/** newKey makes an RSA 2048 key with node:crypto (node-forge signs with RSA only), as PKCS#8 PEM. */
function newKey(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** writeKey writes a key with mode 0600 from its creation (never readable by others, not even briefly). */
async function writeKey(file: string, pem: string): Promise<void> {
  await writeFile(file, pem, { mode: 0o600 });
}

/** Positive, 127 bits: what RFC 5280 asks of a serial number. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f;
  return bytes.toString('hex');
}

/** A certificate valid from an hour ago (clocks differ) for days from now; with negative days, one already expired. */
function newCertificate(publicKey: forge.pki.PublicKey, subject: string, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  const notAfter = Date.now() + days * 86_400_000;
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Math.min(Date.now(), notAfter) - 3_600_000);
  cert.validity.notAfter = new Date(notAfter);
  cert.setSubject([{ name: 'commonName', value: subject }]);
  return cert;
}

const publicKeyOf = (key: forge.pki.rsa.PrivateKey): forge.pki.PublicKey => forge.pki.setRsaPublicKey(key.n, key.e);

async function createCa(work: string, certFile: string, keyFile: string): Promise<void> {
  const keyPem = newKey();
  const key = forge.pki.privateKeyFromPem(keyPem);
  // A name of its own: a certificate of another lab CA then fails as "not this issuer", not as a bad signature.
  const cert = newCertificate(publicKeyOf(key), `load-balancer-lab test CA ${randomBytes(4).toString('hex')}`, CA_DAYS);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  await writeFile(path.join(work, 'ca.pem'), forge.pki.certificateToPem(cert));
  await writeKey(path.join(work, 'ca-key.pem'), keyPem);
  // The certificate before the key: a reader in between sees a key that does not match and makes them again.
  await rename(path.join(work, 'ca.pem'), certFile);
  await rename(path.join(work, 'ca-key.pem'), keyFile);
}

async function createServerCert(work: string, certFile: string, keyFile: string, caCertFile: string, caKeyFile: string, names: readonly string[], days = SERVER_DAYS): Promise<void> {
  const ca = forge.pki.certificateFromPem(await readFile(caCertFile, 'utf8'));
  const caKey = forge.pki.privateKeyFromPem(await readFile(caKeyFile, 'utf8'));
  const keyPem = newKey();
  const cert = newCertificate(publicKeyOf(forge.pki.privateKeyFromPem(keyPem)), names[0]!, days);
  cert.setIssuer(ca.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
    // GeneralName types of RFC 5280: 2 is dNSName, 7 iPAddress.
    { name: 'subjectAltName', altNames: names.map((name) => (isIP(name) ? { type: 7, ip: name } : { type: 2, value: name })) },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  await writeFile(path.join(work, 'server.pem'), forge.pki.certificateToPem(cert));
  await writeKey(path.join(work, 'server-key.pem'), keyPem);
  await rename(path.join(work, 'server.pem'), certFile);
  await rename(path.join(work, 'server-key.pem'), keyFile);
}

/** withLock runs work with lock, a directory made for it alone, as its scratch space; mkdir is atomic, so it is the lock too. */
async function withLock(lock: string, work: (scratch: string) => Promise<void>): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(lock, { mode: 0o700 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const since = await stat(lock).then((info) => info.mtimeMs, () => Date.now());
      if (Date.now() - since > LOCK_STALE_MS) await rm(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`ensureCerts: ${lock} is still there after ${LOCK_WAIT_MS / 1000} s; remove it if no other process is creating certificates`);
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    await work(lock);
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}
