"""The studio web page: server-rendered HTML (Jinja2) with htmx and server-sent events for the live parts.

It calls the services only (``web/views.py`` shapes what it shows), signs in through ``session.py``, and
is served at ``/`` and at ``/jobs/{name}``, the "Web View" URL the SDK prints. See docs/web.md.
"""
