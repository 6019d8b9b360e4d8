// The baseline: what a team would write instead of order-listener. Fastify parses the JSON,
// and each request inserts one row into SQLite with better-sqlite3. WAL with synchronous=FULL,
// so that a 201 is as durable as order-listener's. Usage: node server.js PORT DBFILE
'use strict';
const fastify = require('fastify')({ logger: false, bodyLimit: 1048576 });
const Database = require('better-sqlite3');

const port = Number(process.argv[2] || 18444);
const db = new Database(process.argv[3] || 'baseline.sqlite3');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`CREATE TABLE IF NOT EXISTS events (
  event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, event_date TEXT NOT NULL,
  order_id TEXT, received_at TEXT NOT NULL, body TEXT NOT NULL)`);
const insert = db.prepare(
  'INSERT OR IGNORE INTO events (event_id, event_type, event_date, order_id, received_at, body) VALUES (?, ?, ?, ?, ?, ?)');

fastify.post('/externalapi/listener/v1/listener', async (request, reply) => {
  const event = request.body;
  if (!event || typeof event.eventId !== 'string' || !event.eventType || !event.eventDate || typeof event.event !== 'object') {
    return reply.code(400).send({ code: 22, reason: 'Invalid body' });
  }
  insert.run(event.eventId, event.eventType, event.eventDate, event.event.id || null, new Date().toISOString(), JSON.stringify(event));
  return reply.code(201).send(event);
});

fastify.listen({ port, host: '127.0.0.1' }).then((address) => console.log(`baseline listening on ${address}`));
