"""The regional operations center web app: server-rendered pages with htmx, no CDN."""
