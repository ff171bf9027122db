document.getElementById("app").textContent = "opscheck demo: " + location.pathname;
