// The Node.js entry's client: node http-client.js BASE-URL UPLOAD-FILE. Fetches /blob eight
// times at once over a keep-alive agent, uploads the file to /sha256, asks /peer, and prints
// one line per result: "blob <sha256>", "upload <sha256>", "peer=<address>".
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const [base, upload] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), { method, agent, timeout: 60000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200
        ? resolve(Buffer.concat(chunks))
        : reject(new Error(`${method} ${path}: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

async function main() {
  const blobs = await Promise.all(Array.from({ length: 8 }, () => request('GET', '/blob')));
  for (const b of blobs) console.log(`blob ${sha256(b)}`);
  console.log(`upload ${(await request('POST', '/sha256', fs.readFileSync(upload))).toString()}`);
  process.stdout.write((await request('GET', '/peer')).toString());
  agent.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
