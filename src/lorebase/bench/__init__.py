"""`lorebase bench`: load and index-quality harness against a real `lorebase serve`.

It seeds data through the public API (and, for index-scale scenarios, by COPY), starts the
server as a user would, drives it with `wrk` (or a Python load generator in another process)
and reports throughput, latency percentiles, errors and the server's memory per scenario.
"""
