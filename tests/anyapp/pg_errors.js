// node-postgres (pg) raising the errors a Node backend logs: each case's message and stack, as JSON lines.
// argv: the URL of a database with the table "item", the URL of a port that refuses, the URL with a bad password.
const { Client } = require("pg");

async function attempt(name, url, setup, sql) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    if (setup) await client.query(setup);
    await client.query(sql);
    return { name, message: null };
  } catch (err) {
    return { name, message: String(err.message), stack: String(err.stack), code: err.code || null };
  } finally {
    await client.end().catch(() => {});
  }
}

(async () => {
  const [good, refused, badPassword] = process.argv.slice(2);
  const results = [
    await attempt("relation", good, null, "SELECT * FROM items_gone"),
    await attempt("column", good, null, 'SELECT "createdAt" FROM item'),
    await attempt("refused", refused, null, "SELECT 1"),
    await attempt("password", badPassword, null, "SELECT 1"),
    await attempt("statement timeout", good, "SET statement_timeout = '100ms'", "SELECT pg_sleep(2)"),
  ];
  for (const r of results) console.log(JSON.stringify(r));
})();
