"""Bulk: a folder on one machine, the Distributed Map batch worker, and the client that starts
a bucket's run on Step Functions. They import the models and the core, never http.
"""
