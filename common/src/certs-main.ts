/**
 * Makes the lab's certificates in a folder, for the compose lab's one-shot `certs` service:
 *   node common/dist/certs-main.js DIR [NAME ...]
 * NAMEs (DNS or IP) are what the server certificate is valid for beyond localhost, 127.0.0.1 and ::1.
 * Files still good are kept, so the CA stays the same across `docker compose up`.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ensureCerts, LOCAL_NAMES } from './certs.js';

const [dir, ...extraNames] = process.argv.slice(2);
if (!dir || dir.startsWith('-')) {
  console.error('usage: node common/dist/certs-main.js DIR [NAME ...]   (the lab CA and a server certificate for localhost, 127.0.0.1, ::1 and the NAMEs)');
  process.exit(2);
}
try {
  const files = await ensureCerts(dir, { extraNames });
  const cert = new X509Certificate(readFileSync(files.cert));
  console.log(`certificates in ${dir}: CA ${files.caCert}; server ${files.cert} and ${files.key} for ${[...LOCAL_NAMES, ...extraNames].join(', ')}, valid until ${cert.validToDate.toISOString()}`);
} catch (error) {
  console.error(`certs: ${(error as Error).message}`);
  process.exit(1);
}
