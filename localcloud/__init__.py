"""localcloud: a local stand-in for Cloud Build, Cloud Run, the Log Router and the url_mask load balancer.

Devgem's production adapters talk to Google with the official clients. Locally the same clients are
pointed at this server (``client_options.api_endpoint``), so the code that runs is the code that ships;
only the place it points at differs. See README.md in this folder.
"""
