"""The stack's building blocks: data, functions (and their package), workflow, mail intake, staff
sign-in, HTTP API, schedules, operations (alarms, failure queue, dashboard); cdk-nag and cfn-lint
acknowledgements in ``nag``."""
