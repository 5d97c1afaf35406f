"""HTTP adapters: the Lambda handler's resolver and routes, request bodies, OpenAPI, events,
headers, upload stores and the local server. They import the models and the core, never bulk.
"""
