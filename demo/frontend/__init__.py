"""The demo's frontend: index.html and assets/, served by app.py."""
