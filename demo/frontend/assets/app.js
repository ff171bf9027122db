// The demo's single-page app: it shows which client-side route it was opened on.
const routes = { "/": "Home", "/login": "Log in", "/settings": "Settings" };
document.getElementById("app").textContent = "opscheck demo: " + (routes[location.pathname] || "Not found");
