"""The complaint-handling domain: models, policy, calendar, classification and services.

Nothing in this package imports boto3 or pynamodb: AWS lives behind the ports in
``ports.py`` and is made real in ``shared.adapters``.
"""
