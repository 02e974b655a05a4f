// The Node.js entry's server: node http-server.js HOST PORT FILE.
//   GET /blob     the file
//   POST /sha256  the SHA-256 (hex) of the request body
//   GET /peer     "peer=<address the connection came from>"
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const [host, port, file] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/blob') {
    fs.createReadStream(file).pipe(res);
  } else if (req.method === 'POST' && req.url === '/sha256') {
    const hash = crypto.createHash('sha256');
    req.on('data', (chunk) => hash.update(chunk));
    req.on('end', () => res.end(hash.digest('hex')));
  } else if (req.method === 'GET' && req.url === '/peer') {
    res.end(`peer=${req.socket.remoteAddress}\n`);
  } else {
    res.statusCode = 404;
    res.end();
  }
});
server.listen(Number(port), host, () => console.log(`listening on ${host}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
