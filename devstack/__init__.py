"""The whole platform on one machine, on real servers: the official emulators, the functions in
functions-framework, localcloud, all wired by real Pub/Sub push subscriptions from devgem.topology.

Used by `make run`, by the integration and end-to-end tests, and by the benchmarks.
"""
