"""The stack's building blocks: data, functions, workflow, mail intake, HTTP API."""
