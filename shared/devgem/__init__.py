"""Devgem: the shared package every function and worker imports.

Layers, from the inside out (dependencies point inwards only):
  domain/       plain data and pure decisions: the deployment state machine, identity, errors, validation
  usecases/     one module per command or event; each receives its ports (usecases/ports.py)
  adapters/     Firestore, Cloud Build, Cloud Run, Pub/Sub, the URL probe: the production clients, also run locally
  logs/         the log pipeline: parse, route, group-commit into chunks, read and follow
  entrypoints/  HTTP api, the Pub/Sub push envelope, the pull worker, token verification
  bootstrap.py  wires each use case to the production adapters; topology.py declares topics and consumers once
"""
