"""The contract: the OpenAPI document in `openapi/` and the code that reads it.

- `document`: find and load the document, list its operations, serve it as JSON.
- `validation`: validate requests (OpenAI-style errors) and responses/SSE data against it.
- `official`: extract schema subsets from the official OpenAI spec (or its vendored copy).
- `comparison`: check that our schemas are faithful subsets of the official ones.
"""
