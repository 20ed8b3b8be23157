// A mail sink for the browser tests: just enough SMTP (RFC 5321, plain, no TLS, no AUTH) for the
// vault's lettre client at smtp://127.0.0.1:<port> to deliver portal login codes and account
// invitations. Each message is written to <dir> as <time>-<n>.eml: one `X-Rcpt: <address>` line
// per recipient, then the message as received (dot-stuffing undone). The file is written under a
// temporary name and renamed, so a reader never sees half a message; the 250 answering DATA is
// sent only once the file is in place. Silent unless something fails.
//
//   node smtp-sink.mjs <port> <dir>
import { createServer } from 'node:net';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [port, dir] = [Number(process.argv[2]), process.argv[3]];
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !dir) {
  console.error('usage: node smtp-sink.mjs <port> <dir>');
  process.exit(2);
}

/** Longest command line, and largest message, taken (beyond them the client is cut off). */
const MAX_LINE = 4096;
const MAX_MESSAGE = 20 * 1024 * 1024;
const CRLF = Buffer.from('\r\n');
let delivered = 0;

/** Writes one message atomically; answers its file name. */
function deliver(recipients, lines) {
  delivered += 1;
  const name = `${Date.now()}-${delivered}.eml`;
  const head = recipients.map((r) => `X-Rcpt: ${r}\r\n`).join('');
  const body = Buffer.concat(lines.flatMap((line) => [line, CRLF]));
  const temp = join(dir, `.${name}.tmp`);
  writeFileSync(temp, Buffer.concat([Buffer.from(head, 'utf8'), body]));
  renameSync(temp, join(dir, name));
  return name;
}

/** The address in `MAIL FROM:<a>` / `RCPT TO:<a>` (parameters after it ignored), or null. */
function pathOf(argument) {
  const bracketed = /^\s*<([^>]*)>/.exec(argument);
  if (bracketed) return bracketed[1];
  const bare = /^\s*(\S+)/.exec(argument);
  return bare ? bare[1] : null;
}

const server = createServer((socket) => {
  let pending = Buffer.alloc(0);
  let from = null;
  let recipients = [];
  let data = null; // the lines of the message while in DATA, else null
  let size = 0;
  let closed = false;

  const reply = (text) => {
    if (!closed) socket.write(`${text}\r\n`);
  };
  const reset = () => {
    from = null;
    recipients = [];
    data = null;
    size = 0;
  };

  function command(line) {
    const text = line.toString('utf8');
    const match = /^([A-Za-z]+)(?:[ \t]+(.*))?$/.exec(text);
    const verb = match ? match[1].toUpperCase() : '';
    const argument = match?.[2] ?? '';
    switch (verb) {
      case 'EHLO':
        reset();
        reply('250-localhost');
        reply('250 8BITMIME');
        return;
      case 'HELO':
        reset();
        reply('250 localhost');
        return;
      case 'MAIL': {
        const address = /^FROM:/i.test(argument) ? pathOf(argument.slice(5)) : null;
        if (address === null) return reply('501 Syntax: MAIL FROM:<address>');
        reset();
        from = address;
        return reply('250 OK');
      }
      case 'RCPT': {
        if (from === null) return reply('503 MAIL first');
        const address = /^TO:/i.test(argument) ? pathOf(argument.slice(3)) : null;
        if (!address) return reply('501 Syntax: RCPT TO:<address>');
        recipients.push(address);
        return reply('250 OK');
      }
      case 'DATA':
        if (from === null) return reply('503 MAIL first');
        if (recipients.length === 0) return reply('503 RCPT first');
        data = [];
        size = 0;
        return reply('354 End data with <CR><LF>.<CR><LF>');
      case 'RSET':
        reset();
        return reply('250 OK');
      case 'NOOP':
        return reply('250 OK');
      case 'QUIT':
        reply('221 Bye');
        closed = true;
        socket.end();
        return;
      default:
        return reply('502 Command not implemented');
    }
  }

  function dataLine(line) {
    if (line.length === 1 && line[0] === 0x2e) {
      try {
        deliver(recipients, data);
        reply('250 OK: queued');
      } catch (err) {
        console.error(`smtp-sink: could not write a message: ${err.message}`);
        reply('451 Local error in processing');
      }
      reset();
      return;
    }
    // Dot-stuffing (RFC 5321 4.5.2): a line that begins with a period has one more in front.
    const unstuffed = line[0] === 0x2e ? line.subarray(1) : line;
    size += unstuffed.length + 2;
    if (size > MAX_MESSAGE) {
      reply('552 Message too large');
      closed = true;
      socket.end();
      return;
    }
    data.push(Buffer.from(unstuffed));
  }

  socket.on('data', (chunk) => {
    if (closed) return;
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      const end = pending.indexOf(0x0a);
      if (end < 0) break;
      // Lines end in CRLF; a bare LF is taken as well.
      const line = pending.subarray(0, end > 0 && pending[end - 1] === 0x0d ? end - 1 : end);
      pending = pending.subarray(end + 1);
      if (data !== null) dataLine(line);
      else command(line);
      if (closed) return;
    }
    if (data === null && pending.length > MAX_LINE) {
      reply('500 Line too long');
      closed = true;
      socket.end();
    }
  });
  // A client that hangs up (or a readiness probe) is no failure.
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  reply('220 localhost ESMTP smtp-sink');
});

server.on('error', (err) => {
  console.error(`smtp-sink: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1');
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
