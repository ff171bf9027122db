// node-postgres (pg) raising the errors a Node backend logs: each case's message and stack, as JSON lines.
// argv: the URL of a database with the table "item", the URL of a port that refuses, the URL with a bad password,
// the URL of a database that does not exist, the URL of a role whose connection limit is 0.
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
  const [good, refused, badPassword, noDatabase, limited] = process.argv.slice(2);
  const results = [
    await attempt("relation", good, null, "SELECT * FROM items_gone"),
    await attempt("column", good, null, 'SELECT "createdAt" FROM item'),
    await attempt("refused", refused, null, "SELECT 1"),
    await attempt("password", badPassword, null, "SELECT 1"),
    await attempt("statement timeout", good, "SET statement_timeout = '100ms'", "SELECT pg_sleep(2)"),
    await attempt("no database", noDatabase, null, "SELECT 1"),
    await attempt("role limit", limited, null, "SELECT 1"),
  ];
  for (const r of results) console.log(JSON.stringify(r));
})();
