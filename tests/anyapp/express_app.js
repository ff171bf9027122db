// A real Express backend with cookie sessions, as Node apps have them: express-session (connect.sid) and
// passport-local, and, on the same HTTP server, GraphQL subscriptions over the legacy subscriptions-transport-ws
// protocol (subprotocol "graphql-ws"), as Apollo Server 2/3 and NestJS's installSubscriptionHandlers serve them.
//   node express_app.js PORT     (SMOKE_USER, SMOKE_PASSWORD, SESSION_SECRET from the environment)
// POST /api/auth/login {"username", "password"}: 200 {"ok": true} and a session cookie; a wrong password 401
// {"message": "Incorrect username or password."}; a missing field 400 {"message": "Missing credentials"}.
// GET /api/me, /api/items: 401 without a session. /api/tags: public. /graphql: subscriptions-transport-ws.
// /strict: a WebSocket that closes at once with 4406 "Subprotocol not acceptable". /private: an echo WebSocket
// for a logged-in session only (the upgrade's cookie), 401 otherwise.
// POST /api/jwt/login {"username", "password"}: {"token": <JWT>}; GET /api/jwt/me: passport-jwt reading the
// token from the X-Access-Token header (ExtractJwt.fromHeader), as many Express APIs do.
// Faults (POST /_fault/NAME/on|off, test only): "db" (the login's user lookup fails: a 500 behind the login),
// "items" (a logged-in /api/items answers 500).
const http = require("http");
const express = require("express");
const session = require("express-session");
const passport = require("passport");
const LocalStrategy = require("passport-local").Strategy;
const { SubscriptionServer } = require("subscriptions-transport-ws");
const { execute, subscribe, buildSchema } = require("graphql");
const WebSocket = require("ws");
const jwt = require("jsonwebtoken");
const { Strategy: JwtStrategy, ExtractJwt } = require("passport-jwt");

const port = Number(process.argv[2]);
const USER = process.env.SMOKE_USER;
const PASSWORD = process.env.SMOKE_PASSWORD;
const faults = new Set();

passport.use(new LocalStrategy((username, password, done) => {
  if (faults.has("db")) return done(new Error("connect ECONNREFUSED 127.0.0.1:5432"));
  if (username !== USER || password !== PASSWORD) return done(null, false, { message: "Incorrect username or password." });
  return done(null, { id: 1, username });
}));
const JWT_SECRET = process.env.SESSION_SECRET;
passport.use(new JwtStrategy(
  { jwtFromRequest: ExtractJwt.fromHeader("x-access-token"), secretOrKey: JWT_SECRET },
  (payload, done) => done(null, payload.sub === USER ? { username: USER } : false),
));
passport.serializeUser((user, done) => done(null, user.id));
passport.deserializeUser((id, done) => done(null, { id, username: USER }));

const app = express();
app.use(express.json());
const sessionParser = session({ secret: process.env.SESSION_SECRET, resave: false, saveUninitialized: false });
app.use(sessionParser);
app.use(passport.initialize());
app.use(passport.session());

app.post("/api/auth/login", (req, res, next) => {
  passport.authenticate("local", (err, user, info, status) => {
    if (err) return next(err);
    if (!user) return res.status(status || 401).json({ message: (info && info.message) || "Unauthorized" });
    req.login(user, (error) => (error ? next(error) : res.json({ ok: true })));
  })(req, res, next);
});
const guard = (req, res, next) => (req.isAuthenticated() ? next() : res.status(401).json({ message: "Unauthorized" }));
app.get("/api/me", guard, (req, res) => res.json({ username: req.user.username }));
app.get("/api/items", guard, (req, res, next) => {
  if (faults.has("items")) return next(new Error('relation "items" does not exist'));
  res.json([{ id: 1, title: "first" }]);
});
app.post("/api/jwt/login", (req, res) => {
  if (req.body.username !== USER || req.body.password !== PASSWORD) return res.status(401).json({ message: "Unauthorized" });
  res.json({ token: jwt.sign({ sub: USER }, JWT_SECRET, { expiresIn: "1h" }) });
});
app.get("/api/jwt/me", passport.authenticate("jwt", { session: false }), (req, res) => res.json(req.user));
app.get("/api/tags", (req, res) => res.json({ tags: ["ops", "express"] }));
app.post("/_fault/:name/:state", (req, res) => {
  if (req.params.state === "on") faults.add(req.params.name); else faults.delete(req.params.name);
  res.status(204).end();
});

const server = http.createServer(app);
const schema = buildSchema("type Query { hello: String } type Subscription { tick: Int }");
const root = { tick: async function* () { yield { tick: 1 }; } };
const graphqlWs = new WebSocket.Server({ noServer: true });
SubscriptionServer.create(
  { schema, execute, subscribe, rootValue: root, keepAlive: 1000,
    onConnect: () => { if (faults.has("ws")) throw new Error("Missing auth token!"); return {}; } },
  graphqlWs,
);
const strict = new WebSocket.Server({ noServer: true });
strict.on("connection", (socket) => socket.close(4406, "Subprotocol not acceptable"));
// /private: a WebSocket for logged-in users only, the session read from the upgrade's cookie (ws's own
// express-session example); anonymous upgrades get a 401.
const privateWs = new WebSocket.Server({ noServer: true });
privateWs.on("connection", (socket) => socket.on("message", (data) => socket.send(data)));
const sockets = { "/graphql": graphqlWs, "/strict": strict, "/private": privateWs };
server.on("upgrade", (request, socket, head) => {
  const wss = sockets[request.url];
  if (!wss) return socket.destroy();
  const upgrade = () => wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
  if (wss !== privateWs) return upgrade();
  sessionParser(request, {}, () => {
    if (!request.session || !request.session.passport || !request.session.passport.user) {
      socket.write("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n");
      return socket.destroy();
    }
    upgrade();
  });
});
server.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
